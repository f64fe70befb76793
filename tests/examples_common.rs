//! The unit tests of the server examples' shared code (`examples/common/`), which is
//! not part of the library: this test crate includes the module by path so that
//! `cargo test --workspace` runs them.

// The examples use all of it; this crate only runs its tests.
#[allow(unused_macros, unused_imports)]
#[path = "../examples/common/mod.rs"]
mod common;
