//! The core on bare metal, running: the simulator's echo scenario (the `echo`
//! feature, on by default) and its chat scenario (the `chat` feature) for a few
//! hundred seeds on a Cortex-M3 under QEMU, every seed's trace hash printed through
//! semihosting, the exit status through semihosting too. Built for the host
//! (`cargo run`), the same program prints the same lines: `run.sh` diffs them.
//!
//! Lines starting with `#` are the firmware's own measurements (memory sizes, stack
//! depth), not part of the comparison.
#![cfg_attr(target_os = "none", no_std, no_main)]

mod seeds;

#[cfg(target_os = "none")]
mod firmware;

/// The host's stdout as a `fmt::Write`.
#[cfg(not(target_os = "none"))]
struct Stdout(std::io::StdoutLock<'static>);

#[cfg(not(target_os = "none"))]
impl core::fmt::Write for Stdout {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        use std::io::Write;
        self.0.write_all(s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    let mut out = Stdout(std::io::stdout().lock());
    let mut tally = seeds::Tally::default();
    #[cfg(feature = "echo")]
    seeds::echo(&mut out, &mut tally);
    #[cfg(feature = "chat")]
    seeds::chat(&mut out, &mut tally);
    let ok = seeds::close(&mut out, tally);
    std::process::exit(if ok { 0 } else { 1 });
}
