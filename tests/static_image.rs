//! The servers' whole state is a `static` whose empty value is all zero bytes, so it
//! lands in `.bss` (allocated at load, not stored in the binary): the binaries stay
//! small however large the reactor is. This reads the section headers of the built
//! example binaries (ELF32 or ELF64, little-endian) and checks that `.data` is small
//! and `.bss` holds the reactor. One non-zero byte anywhere in the empty reactor
//! (a free-list end marker, an `Option` niche, a "no time" value) would move the
//! whole static to `.data` and fail this.

mod common;

use std::path::Path;

/// `.data` must stay below this: the reactors are megabytes, and the rest of `.data`
/// (std's and ours) is about 2.5 KiB on x86_64, so a table of a few KiB that is not
/// all zeros when empty shows up too (the child-process table once put 24 KiB there).
const DATA_LIMIT: u64 = 8 * 1024;

/// The sizes of the sections named `.data` and `.bss`.
fn data_and_bss(path: &Path) -> (u64, u64) {
    let elf = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        &elf[..4],
        b"\x7fELF",
        "{} is not an ELF file",
        path.display()
    );
    assert_eq!(elf[5], 1, "little-endian ELF expected");
    let wide = match elf[4] {
        1 => false,
        2 => true,
        c => panic!("unknown ELF class {c}"),
    };
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let u32_at = |o: usize| u64::from(u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()));
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let word = |o: usize| if wide { u64_at(o) } else { u32_at(o) };
    // e_shoff, e_shentsize, e_shnum, e_shstrndx
    let (shoff, shentsize, shnum, shstrndx) = if wide {
        (u64_at(0x28), u16_at(0x3A), u16_at(0x3C), u16_at(0x3E))
    } else {
        (u32_at(0x20), u16_at(0x2E), u16_at(0x30), u16_at(0x32))
    };
    // Within a section header: sh_name at 0, sh_offset and sh_size after the flags
    // and address words.
    let (off_at, size_at) = if wide { (0x18, 0x20) } else { (0x10, 0x14) };
    let header = |i: u64| (shoff + i * shentsize) as usize;
    let strtab = word(header(shstrndx) + off_at) as usize;
    let name = |h: usize| {
        let start = strtab + u32_at(h) as usize;
        let end = elf[start..].iter().position(|&b| b == 0).unwrap() + start;
        String::from_utf8_lossy(&elf[start..end]).into_owned()
    };
    let (mut data, mut bss) = (None, None);
    for i in 0..shnum {
        let h = header(i);
        match name(h).as_str() {
            ".data" => data = Some(word(h + size_at)),
            ".bss" => bss = Some(word(h + size_at)),
            _ => {}
        }
    }
    (data.expect("a .data section"), bss.expect("a .bss section"))
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
