//! Memory: what a channel, a map, a selector and a whole reactor cost, from
//! `size_of` of public types only.
//!
//! ```text
//! cargo bench --bench memory
//! ```
//!
//! How the per-channel figures are computed (no private type is named):
//!
//! * **slot** = (`size_of::<ChannelMap<S, D, 2048>>()` − `size_of::<ChannelMap<S, D,
//!   1024>>()`) / 1024: the map is `[Slot; N]` plus fixed bookkeeping, so the
//!   difference of two capacities is exactly 1,024 slots, padding included;
//! * **slot overhead** = slot − `size_of::<S>()` − `size_of::<D>()`: what the map adds
//!   to the user's socket and dispatcher (the slot's tag, the channel's state and
//!   flags and the slot's generation, 8 bytes, and any padding the combination
//!   needs; a vacant slot's free-list link shares the channel's room);
//! * **reactor per channel** = the same difference on `Reactor<SelectIo, D, N>`
//!   (a selector with no per-fd state), minus `S` and `D`: the slot overhead plus the
//!   per-channel arrays of the loop (the deadline heap: an entry and a position per
//!   slot). The reactor's event buffer
//!   is not per channel: it is a fixed batch of `EVENT_BATCH` events, whatever `N`.
//!
//! The echo server example's configuration is `StdReactor<Echo<StdSocket, 2048>,
//! 2048>` in a `static Mutex`; its `.bss` can be cross-checked with
//! `readelf -S target/release/examples/echo_server`.

use std::mem::size_of;
use std::sync::Mutex;

use asyncore::{
    AnySelector, ChannelMap, EVENT_BATCH, Echo, EpollSelector, Event, PollIo, PollSelector,
    Reactor, SelectIo, SelectSelector, StdReactor, StdSocket,
};

/// One slot of `ChannelMap<S, D, _>`, padding included.
fn slot<S, D>() -> usize {
    (size_of::<ChannelMap<S, D, 2048>>() - size_of::<ChannelMap<S, D, 1024>>()) / 1024
}

/// What the map adds per channel to `S` and `D`.
fn slot_overhead<S, D>() -> usize {
    slot::<S, D>() - size_of::<S>() - size_of::<D>()
}

/// What a reactor (without selector state) adds per channel to `S` and `D`.
fn reactor_overhead<D>() -> usize
where
    D: asyncore::Dispatcher<StdSocket>,
{
    let per =
        (size_of::<Reactor<SelectIo, D, 2048>>() - size_of::<Reactor<SelectIo, D, 1024>>()) / 1024;
    per - size_of::<StdSocket>() - size_of::<D>()
}

/// A dispatcher of one `u64`, like a small protocol state.
#[derive(Debug)]
#[allow(dead_code)]
struct Small(u64);
impl asyncore::Dispatcher<StdSocket> for Small {
    type Error = asyncore::Error;
}

/// A dispatcher of one byte.
#[derive(Debug)]
#[allow(dead_code)]
struct Tiny(u8);
impl asyncore::Dispatcher<StdSocket> for Tiny {
    type Error = asyncore::Error;
}

/// The echo server example's configuration.
const CAPACITY: usize = 2048;
const BUFFER: usize = 2048;
type EchoServer = StdReactor<Echo<StdSocket, BUFFER>, CAPACITY>;

fn kib(n: usize) -> String {
    if n >= 1024 {
        format!("{n} B ({:.1} KiB)", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn main() {
    println!("## Per channel\n");
    println!("| S, D | size_of S + D | slot | slot overhead | reactor per channel (overhead) |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| (), () | 0 | {} | **{}** | – |",
        slot::<(), ()>(),
        slot_overhead::<(), ()>()
    );
    println!(
        "| StdSocket, u8 dispatcher | {} | {} | **{}** | {} |",
        size_of::<StdSocket>() + size_of::<Tiny>(),
        slot::<StdSocket, Tiny>(),
        slot_overhead::<StdSocket, Tiny>(),
        reactor_overhead::<Tiny>()
    );
    println!(
        "| StdSocket, u64 dispatcher | {} | {} | **{}** | {} |",
        size_of::<StdSocket>() + size_of::<Small>(),
        slot::<StdSocket, Small>(),
        slot_overhead::<StdSocket, Small>(),
        reactor_overhead::<Small>()
    );
    println!(
        "| StdSocket, Echo<StdSocket, 2048> | {} | {} | **{}** | {} |",
        size_of::<StdSocket>() + size_of::<Echo<StdSocket, BUFFER>>(),
        slot::<StdSocket, Echo<StdSocket, BUFFER>>(),
        slot_overhead::<StdSocket, Echo<StdSocket, BUFFER>>(),
        reactor_overhead::<Echo<StdSocket, BUFFER>>()
    );
    println!();
    println!(
        "Per channel beyond the slot, the reactor keeps a deadline heap entry ({} B); its \
         event buffer is fixed, `EVENT_BATCH` × `Event` = {} × {} B = {} B whatever the \
         number of channels (a wait that finds more ready is dispatched in several batches \
         of one pass); `PollSelector` adds {} B per slot (its `pollfd`); `select(2)` and \
         `epoll` keep nothing per channel (select's fd sets and per-fd tokens are fixed, {} B; \
         `EpollSelector<E>` keeps {} B per event one wait can report, an `epoll_event`). \
         In all, per channel beyond the socket and dispatcher: {} B on select or epoll, {} B on poll.",
        (size_of::<Reactor<SelectIo, Small, 2048>>() - size_of::<Reactor<SelectIo, Small, 1024>>())
            / 1024
            - slot::<StdSocket, Small>(),
        EVENT_BATCH,
        size_of::<Event>(),
        EVENT_BATCH * size_of::<Event>(),
        (size_of::<PollSelector<2048>>() - size_of::<PollSelector<1024>>()) / 1024,
        size_of::<SelectSelector>(),
        (size_of::<EpollSelector<2048>>() - size_of::<EpollSelector<1024>>()) / 1024,
        reactor_overhead::<Small>(),
        reactor_overhead::<Small>()
            + (size_of::<PollSelector<2048>>() - size_of::<PollSelector<1024>>()) / 1024,
    );

    println!("\n## Maps, selectors, reactors\n");
    println!("| what | size_of |");
    println!("|---|---:|");
    println!(
        "| `ChannelMap<(), (), 64>` (bookkeeping only) | {} |",
        kib(size_of::<ChannelMap<(), (), 64>>())
    );
    println!(
        "| `ChannelMap<(), (), 1024>` (bookkeeping only) | {} |",
        kib(size_of::<ChannelMap<(), (), 1024>>())
    );
    println!(
        "| `ChannelMap<StdSocket, u64 dispatcher, 64>` | {} |",
        kib(size_of::<ChannelMap<StdSocket, Small, 64>>())
    );
    println!(
        "| `ChannelMap<StdSocket, u64 dispatcher, 1024>` | {} |",
        kib(size_of::<ChannelMap<StdSocket, Small, 1024>>())
    );
    println!(
        "| `ChannelMap<StdSocket, Echo<StdSocket, 2048>, 64>` | {} |",
        kib(size_of::<ChannelMap<StdSocket, Echo<StdSocket, BUFFER>, 64>>())
    );
    println!(
        "| `ChannelMap<StdSocket, Echo<StdSocket, 2048>, 1024>` | {} |",
        kib(size_of::<
            ChannelMap<StdSocket, Echo<StdSocket, BUFFER>, 1024>,
        >())
    );
    println!(
        "| `SelectSelector` (seven `fd_set`s, {} B: the interest sets, the last wait's results \
         and the fds it found closed; and a token per fd) | {} |",
        7 * size_of::<nix::libc::fd_set>(),
        kib(size_of::<SelectSelector>())
    );
    println!(
        "| `PollSelector<64>` | {} |",
        kib(size_of::<PollSelector<64>>())
    );
    println!(
        "| `PollSelector<1024>` | {} |",
        kib(size_of::<PollSelector<1024>>())
    );
    println!(
        "| `EpollSelector<64>` | {} |",
        kib(size_of::<EpollSelector<64>>())
    );
    println!(
        "| `EpollSelector<1024>` | {} |",
        kib(size_of::<EpollSelector<1024>>())
    );
    println!(
        "| `AnySelector<2048>` | {} |",
        kib(size_of::<AnySelector<2048>>())
    );
    println!(
        "| `Reactor<PollIo<64>, u64 dispatcher, 64>` | {} |",
        kib(size_of::<Reactor<PollIo<64>, Small, 64>>())
    );
    println!(
        "| `Reactor<PollIo<1024>, u64 dispatcher, 1024>` | {} |",
        kib(size_of::<Reactor<PollIo<1024>, Small, 1024>>())
    );
    println!(
        "| `Reactor<SelectIo, Echo<StdSocket, 2048>, 64>` | {} |",
        kib(size_of::<Reactor<SelectIo, Echo<StdSocket, BUFFER>, 64>>())
    );
    println!(
        "| echo_server: `Mutex<StdReactor<Echo<StdSocket, 2048>, 2048>>` (its whole static state) | {} |",
        kib(size_of::<Mutex<EchoServer>>())
    );
    let per_conn = size_of::<Mutex<EchoServer>>() / CAPACITY;
    println!(
        "| … per channel of it ({CAPACITY} channels, {BUFFER} B echo buffer each) | {} |",
        kib(per_conn)
    );
}
