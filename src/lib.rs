//! asyncore for Rust (std facade). Filled in by the backend issues.
#![deny(missing_docs)]

pub use asyncore_core::*;
