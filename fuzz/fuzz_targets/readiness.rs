//! Arbitrary readiness bits and scripted socket results into the dispatch state
//! machine (`asyncore_core::sim::fuzz::readiness`).
#![no_main]

use asyncore_core::sim::fuzz::readiness;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hooks = asyncore_core::thread_local_check_hooks!();
    if let Err(failure) = readiness::run(data, Some(hooks)) {
        let ops: Vec<readiness::Op> = readiness::ops(data).collect();
        panic!("readiness: invariant broken: {failure:?}\noperations: {ops:#?}");
    }
});
