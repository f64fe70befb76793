//! Arbitrary input chunking and terminators through AsyncChat, against the reference
//! parser (`asyncore_core::sim::fuzz::chat_framing`).
#![no_main]

use asyncore_core::sim::fuzz::chat_framing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = chat_framing::run(data) {
        let ops: Vec<chat_framing::Op<'_>> = chat_framing::ops(data).collect();
        panic!("chat_framing: differs from the reference: {failure:?}\noperations: {ops:#?}");
    }
});
