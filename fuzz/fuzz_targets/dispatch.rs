//! Arbitrary operations over the simulated network and an echo server with
//! scriptable handlers (`asyncore_core::sim::fuzz::dispatch`).
#![no_main]

use asyncore_core::sim::fuzz::dispatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hooks = asyncore_core::thread_local_check_hooks!();
    if let Err(failure) = dispatch::run(data, Some(hooks)) {
        let ops: Vec<dispatch::Op> = dispatch::ops(data).collect();
        panic!("dispatch: invariant broken: {failure:?}\noperations: {ops:#?}");
    }
});
