//! Tells the integration tests which target they were built for, so that they start
//! the example binaries the way cargo started them: through that target's runner
//! (`CARGO_TARGET_<TRIPLE>_RUNNER`, e.g. `qemu-arm` for ARM binaries on an x86_64
//! host). See `tests/common/peers.rs`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=ASYNCORE_BUILD_TARGET={target}");
}
