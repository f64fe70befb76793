//! The conformance suite for datagram channels: every scenario of
//! `conformance/dgram_scenarios.rs` runs on the mock (`MockSocket::datagram`,
//! scripted like Linux), on `select(2)`, `poll(2)` and `epoll(7)` (real UDP v4/v6 and
//! Unix datagram sockets), and asserts the callbacks, what was received and the
//! errors met. Where the kernel reports a situation differently to them, the scenario
//! names the difference and asserts each backend against its own column (epoll
//! reports what poll reports).

#[path = "conformance/dgram_harness.rs"]
mod dgram_harness;
#[path = "conformance/dgram_mock.rs"]
mod dgram_mock;
#[path = "conformance/dgram_real.rs"]
mod dgram_real;
#[path = "conformance/dgram_scenarios.rs"]
mod dgram_scenarios;
#[path = "conformance/drec.rs"]
mod drec;
#[path = "conformance/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "conformance/real.rs"]
#[allow(dead_code)]
mod real;
#[path = "conformance/rec.rs"]
#[allow(dead_code)]
mod rec;
#[path = "conformance/spy.rs"]
#[allow(dead_code)]
mod spy;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod mock {
            $(#[test] fn $name() { crate::dgram_scenarios::$name::<crate::dgram_mock::MockDH>(); })*
        }
        mod select {
            $(#[test] fn $name() { crate::dgram_scenarios::$name::<crate::dgram_real::SelectDH>(); })*
            #[test] fn mixed_map() { crate::dgram_real::mixed_map::<crate::real::SelectKind>(); }
        }
        mod poll {
            $(#[test] fn $name() { crate::dgram_scenarios::$name::<crate::dgram_real::PollDH>(); })*
            #[test] fn mixed_map() { crate::dgram_real::mixed_map::<crate::real::PollKind>(); }
        }
        mod epoll {
            $(#[test] fn $name() { crate::dgram_scenarios::$name::<crate::dgram_real::EpollDH>(); })*
            #[test] fn mixed_map() { crate::dgram_real::mixed_map::<crate::real::EpollKind>(); }
        }
    };
}

conformance! {
    boundaries_and_sources_v4,
    boundaries_and_sources_v6,
    boundaries_and_sources_unix,
    truncation_reported,
    write_readiness,
    connected_refused,
    connected_refused_writer,
    connected_refused_propagated,
    refused_unread,
    full_buffer_back_pressure,
}
