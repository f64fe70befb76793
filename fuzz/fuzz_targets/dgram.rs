//! Arbitrary operations over the simulated datagram network and a reactor running a
//! datagram echo server and datagram clients (`asyncore_core::sim::fuzz::dgram`).
#![no_main]

use asyncore_core::sim::fuzz::dgram;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let hooks = asyncore_core::thread_local_check_hooks!();
    if let Err(failure) = dgram::run(data, Some(hooks)) {
        let ops: Vec<dgram::Op> = dgram::ops(data).collect();
        panic!("dgram: invariant broken: {failure:?}\noperations: {ops:#?}");
    }
});
