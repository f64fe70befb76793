//! poll(2) backend (filled by its issue).
