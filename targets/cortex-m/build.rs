//! Puts the image's memory layout where cortex-m-rt's `link.x` finds it as
//! `memory.x` (bare-metal builds only): `memory/mps2-an385.x` with the `mps2-an385`
//! feature; otherwise the LM3S6965's 64 KiB, split between the stack and the statics
//! as the scenario needs (`memory/lm3s6965evb-echo.x` for the echo scenario,
//! `memory/lm3s6965evb-chat.x` for the chat scenario). Both scenarios at once do not
//! fit in 64 KiB: that build stops here and says so.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=memory");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let feature = |name: &str| std::env::var_os(format!("CARGO_FEATURE_{name}")).is_some();
    let layout = match (feature("MPS2_AN385"), feature("ECHO"), feature("CHAT")) {
        (true, _, _) => "mps2-an385",
        (false, true, false) => "lm3s6965evb-echo",
        (false, false, true) => "lm3s6965evb-chat",
        (false, echo, _) => {
            eprintln!(
                "asyncore-cortex-m: the LM3S6965 (64 KiB of RAM) runs one scenario per image: \
                 build with the default features (echo) or with `--no-default-features \
                 --features chat`; {} (README, Targets)",
                if echo {
                    "the echo and chat scenarios together need the mps2-an385 feature"
                } else {
                    "no scenario is selected"
                }
            );
            std::process::exit(1);
        }
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::copy(format!("memory/{layout}.x"), out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
}
