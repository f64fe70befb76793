//! One conformance suite over the four backends: every scenario of
//! `conformance/scenarios.rs` runs on the mock (`MockSelector` + `MockSocket`,
//! scripted like Linux), on `select(2)`, on `poll(2)` and on `epoll(7)` (real TCP
//! loopback sockets), and asserts the exact callback sequence. Where the kernel
//! reports a situation differently to `select(2)`, `poll(2)` and `epoll(7)`, the
//! scenario names the difference and asserts each backend against its own column.
//! epoll reports what poll reports (both ask the socket's own poll routine), except
//! for an fd closed behind the loop's back (`fd_closed_under_loop`), which simply
//! leaves the epoll set.

#[path = "conformance/harness.rs"]
mod harness;
#[path = "conformance/mock.rs"]
mod mock_harness;
#[path = "conformance/real.rs"]
mod real;
#[path = "conformance/rec.rs"]
mod rec;
#[path = "conformance/scenarios.rs"]
mod scenarios;
#[path = "conformance/spy.rs"]
mod spy;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod mock {
            $(#[test] fn $name() { crate::scenarios::$name::<crate::mock_harness::MockH>(); })*
        }
        mod select {
            $(#[test] fn $name() { crate::scenarios::$name::<crate::real::SelectH>(); })*
        }
        mod poll {
            $(#[test] fn $name() { crate::scenarios::$name::<crate::real::PollH>(); })*
        }
        mod epoll {
            $(#[test] fn $name() { crate::scenarios::$name::<crate::real::EpollH>(); })*
        }
    };
}

conformance! {
    connect_succeeds,
    connect_refused,
    accept,
    read,
    write,
    peer_fin_closes,
    peer_fin_keep_writing,
    peer_reset,
    peer_reset_idle_reader,
    out_of_band,
    fd_closed_under_loop,
    no_interest_no_events,
    listener_never_writable,
    close_in_handler_stops_callbacks,
    exit_ends_run,
    count_respected,
    timeout_respected,
    connect_then_peer_closes,
    client_resets_before_accept,
    both_directions_shut,
    fresh_socket,
    handler_closes_its_socket,
    close_other_channel,
}
