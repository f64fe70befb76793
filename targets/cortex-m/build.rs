//! Puts the board's memory layout where cortex-m-rt's `link.x` finds it as
//! `memory.x` (bare-metal builds only): `memory/lm3s6965evb.x`, or
//! `memory/mps2-an385.x` with the `mps2-an385` feature.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=memory");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let board = if std::env::var_os("CARGO_FEATURE_MPS2_AN385").is_some() {
        "mps2-an385"
    } else {
        "lm3s6965evb"
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::copy(format!("memory/{board}.x"), out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
}
