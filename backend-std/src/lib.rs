//! select(2) backend (filled by its issue).
