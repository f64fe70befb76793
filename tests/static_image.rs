//! The servers' whole state is a `static` whose empty value is all zero bytes, so it
//! lands in `.bss` (allocated at load, not stored in the binary): the binaries stay
//! small however large the reactor is. This reads the section headers of the built
//! example binaries (ELF32 or ELF64, little-endian) and checks that `.data` is small
//! and `.bss` holds the reactor. One non-zero byte anywhere in the empty reactor
//! (a free-list end marker, an `Option` niche, a "no time" value) would move the
//! whole static to `.data` and fail this.
//!
//! The same for the building blocks, one by one: statics of this test binary built
//! with every `const` constructor users put in a `static` (reactors over each
//! selector, the map, the selectors, the send buffer, the echo connection, the
//! chat output, the datagram queue, the buffer pool), each in a `Mutex` as a
//! server keeps it (a `static` without interior mutability goes to `.rodata`
//! whatever its bytes), found in this binary's symbol table and required to be in
//! `.bss`.

mod common;
#[path = "support/elf.rs"]
mod elf;

use asyncore::chat::{ChatControl, NoProducer};
use asyncore::{
    Addr, AnySelector, Backend, BufferPool, ChannelMap, DatagramQueue, Echo, EchoConn, EpollIo,
    EpollSelector, PollIo, PollSelector, Reactor, SelectIo, SelectSelector, SendBuffer, StdReactor,
    StdSocket,
};
use elf::Elf;
use std::path::Path;
use std::sync::Mutex;

/// `.data` must stay below this: the reactors are megabytes, and the rest of `.data`
/// (std's and ours) is about 2.5 KiB on x86_64, so a table of a few KiB that is not
/// all zeros when empty shows up too (the child-process table once put 24 KiB there).
const DATA_LIMIT: u64 = 8 * 1024;

type EchoDispatcher = Echo<StdSocket, 256>;

#[used]
static ZERO_STD_REACTOR: Mutex<StdReactor<EchoDispatcher, 16, BufferPool<2, 4096>>> = Mutex::new(
    StdReactor::with_pool(AnySelector::new(Backend::Select), BufferPool::new()),
);
#[used]
static ZERO_SELECT_REACTOR: Mutex<Reactor<SelectIo, EchoDispatcher, 16>> =
    Mutex::new(Reactor::new(SelectSelector::new()));
#[used]
static ZERO_POLL_REACTOR: Mutex<Reactor<PollIo<16>, EchoDispatcher, 16>> =
    Mutex::new(Reactor::new(PollSelector::new()));
#[used]
static ZERO_EPOLL_REACTOR: Mutex<Reactor<EpollIo<16>, EchoDispatcher, 16>> =
    Mutex::new(Reactor::new(EpollSelector::new()));
#[used]
static ZERO_MAP: Mutex<ChannelMap<StdSocket, EchoDispatcher, 16>> = Mutex::new(ChannelMap::new());
#[used]
static ZERO_SELECT_SELECTOR: Mutex<SelectSelector> = Mutex::new(SelectSelector::new());
#[used]
static ZERO_POLL_SELECTOR: Mutex<PollSelector<16>> = Mutex::new(PollSelector::new());
#[used]
static ZERO_EPOLL_SELECTOR: Mutex<EpollSelector<16>> = Mutex::new(EpollSelector::new());
#[used]
static ZERO_SEND_BUFFER: Mutex<SendBuffer<256>> = Mutex::new(SendBuffer::new());
#[used]
static ZERO_ECHO_CONN: Mutex<EchoConn<256>> = Mutex::new(EchoConn::new());
#[used]
static ZERO_CHAT_CONTROL: Mutex<ChatControl<NoProducer, 256, 4>> = Mutex::new(ChatControl::new());
#[used]
static ZERO_DATAGRAM_QUEUE: Mutex<DatagramQueue<Addr, 256, 4>> = Mutex::new(DatagramQueue::new());
#[used]
static ZERO_POOL: Mutex<BufferPool<2, 256>> = Mutex::new(BufferPool::new());

/// Each `ZERO_*` static above, in `.bss`.
#[test]
fn empty_values_are_all_zero_bytes() {
    let me = std::env::current_exe().expect("current_exe");
    let elf = Elf::read(&me);
    let mut wrong = Vec::new();
    for name in [
        "ZERO_STD_REACTOR",
        "ZERO_SELECT_REACTOR",
        "ZERO_POLL_REACTOR",
        "ZERO_EPOLL_REACTOR",
        "ZERO_MAP",
        "ZERO_SELECT_SELECTOR",
        "ZERO_POLL_SELECTOR",
        "ZERO_EPOLL_SELECTOR",
        "ZERO_SEND_BUFFER",
        "ZERO_ECHO_CONN",
        "ZERO_CHAT_CONTROL",
        "ZERO_DATAGRAM_QUEUE",
        "ZERO_POOL",
    ] {
        let (section, size) = elf
            .symbol_section(name)
            .unwrap_or_else(|| panic!("{name} not in {}'s symbol table", me.display()));
        println!("{name}: {section}, {size} B");
        if section != ".bss" {
            wrong.push(format!("{name} ({size} B) is in {section}"));
        }
    }
    assert!(wrong.is_empty(), "not all zero bytes when empty: {wrong:?}");
}

/// The sizes of the sections named `.data` and `.bss`.
fn data_and_bss(path: &Path) -> (u64, u64) {
    let elf = Elf::read(path);
    let size = |name: &str| {
        elf.section(name)
            .unwrap_or_else(|| panic!("{}: no {name} section", path.display()))
            .size
    };
    (size(".data"), size(".bss"))
}

fn check(name: &str, reactor_at_least: u64) {
    let Some(bin) = common::peers::example(name) else {
        return; // skipped, with the reason printed
    };
    let (data, bss) = data_and_bss(&bin);
    println!("{name}: .data {data} B, .bss {bss} B");
    assert!(
        data < DATA_LIMIT,
        "{name}: .data is {data} bytes: the empty reactor is no longer all zero bytes"
    );
    assert!(
        bss >= reactor_at_least,
        "{name}: .bss is {bss} bytes, less than the reactor"
    );
}

#[test]
fn echo_server_state_is_in_bss() {
    // 2048 channels of 2 KiB and a 1 MiB pool: over 5 MB.
    check("echo_server", 5_000_000);
}

#[test]
fn chat_server_state_is_in_bss() {
    check("chat_server", 10_000_000);
}

#[test]
fn udp_echo_state_is_in_bss() {
    // One channel with a 128 KiB reply queue, and a 64 KiB pool buffer.
    check("udp_echo", 190_000);
}

#[test]
fn inetd_state_is_in_bss() {
    // 386 channels, each the size of a connection with its two 8 KiB rings.
    check("inetd", 6_000_000);
}
