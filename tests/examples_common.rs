//! The unit tests of the server examples' shared code (`examples/common/`), which is
//! not part of the library: this test crate includes the module by path so that
//! `cargo test --workspace` runs them.

#[path = "../examples/common/mod.rs"]
mod common;
