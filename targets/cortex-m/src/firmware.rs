//! The bare-metal side: reset entry, semihosting output and exit, the memory and
//! stack figures, panics and faults.

use core::fmt::{self, Write};
use core::mem::size_of;
#[cfg(all(feature = "echo", feature = "chat"))]
use core::ptr::write_volatile;
use core::ptr::{addr_of, read_volatile};

// Linked for its single-core `critical-section` implementation (interrupts masked).
use cortex_m as _;

#[cfg(feature = "chat")]
use asyncore_core::sim::chat_scenario::{ChatNet, ChatReactor};
#[cfg(feature = "echo")]
use asyncore_core::sim::scenario::{EchoNet, EchoReactor};
use cortex_m_rt::{ExceptionFrame, STACK_PAINT_VALUE, entry, exception};
use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
use cortex_m_semihosting::hio::{self, HostStream};

use crate::seeds;

/// Semihosting output, a line at a time: each semihosting call traps into the
/// debugger (here QEMU), so a line is gathered first and written in one call.
struct Lines {
    host: Option<HostStream>,
    buf: [u8; 256],
    len: usize,
}

impl Lines {
    fn new() -> Lines {
        Lines {
            host: hio::hstdout().ok(),
            buf: [0; 256],
            len: 0,
        }
    }

    fn flush(&mut self) -> fmt::Result {
        let line = &self.buf[..self.len];
        self.len = 0;
        match self.host.as_mut() {
            Some(host) => host.write_all(line).map_err(|()| fmt::Error),
            None => Err(fmt::Error),
        }
    }
}

impl Write for Lines {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush()?;
            }
            self.buf[self.len] = b;
            self.len += 1;
            if b == b'\n' {
                self.flush()?;
            }
        }
        Ok(())
    }
}

unsafe extern "C" {
    /// Top of the stack (cortex-m-rt's linker script; set in `memory.x`).
    static _stack_start: u32;
    /// Bottom of the stack: what `paint-stack` painted from.
    static _stack_end: u32;
}

/// Bytes of stack used so far (the deepest point reached since reset) and the stack's
/// size: the painted words from the bottom up that still hold the paint were never
/// touched.
fn stack_use() -> (usize, usize) {
    let bottom = addr_of!(_stack_end) as usize;
    let top = addr_of!(_stack_start) as usize;
    let mut p = bottom;
    while p < top {
        // SAFETY: `p` is a word-aligned address inside the stack region that
        // `memory.x` reserves in SRAM; reading it has no side effect. The words
        // below the stack pointer belong to no Rust object.
        if unsafe { read_volatile(p as *const u32) } != STACK_PAINT_VALUE {
            break;
        }
        p += 4;
    }
    (top - p, top - bottom)
}

/// Paints the stack below the current stack pointer (less a margin) again, as
/// `paint-stack` did at reset, so that [`stack_use`] then shows the next phase's
/// depth alone.
#[cfg(all(feature = "echo", feature = "chat"))]
fn repaint() {
    let bottom = addr_of!(_stack_end) as usize;
    let end = (cortex_m::register::msp::read() as usize).saturating_sub(256) & !3;
    let mut p = bottom;
    while p < end {
        // SAFETY: `p` is a word-aligned address in the stack region `memory.x`
        // reserves, below the stack pointer: no live value is there (the Arm
        // procedure call standard has no red zone, and no interrupt is enabled).
        unsafe { write_volatile(p as *mut u32, STACK_PAINT_VALUE) };
        p += 4;
    }
}

/// The sizes of the scenarios' networks (in statics) and reactors (on the stack
/// while a run lasts), on this target.
fn memory(out: &mut impl Write) -> fmt::Result {
    #[cfg(feature = "echo")]
    writeln!(
        out,
        "# memory: echo scenario: network (static) {} B, reactor {} B",
        size_of::<EchoNet>(),
        size_of::<EchoReactor<'static>>()
    )?;
    #[cfg(feature = "chat")]
    writeln!(
        out,
        "# memory: chat scenario: network (static) {} B, reactor {} B",
        size_of::<ChatNet>(),
        size_of::<ChatReactor<'static>>()
    )?;
    Ok(())
}

#[entry]
fn main() -> ! {
    let mut out = Lines::new();
    let _ = memory(&mut out);
    let mut tally = seeds::Tally::default();
    #[cfg(feature = "echo")]
    {
        seeds::echo(&mut out, &mut tally);
        let (used, size) = stack_use();
        let _ = writeln!(out, "# stack: echo scenario {used} B deep (of {size} B)");
    }
    #[cfg(feature = "chat")]
    {
        #[cfg(feature = "echo")]
        repaint();
        seeds::chat(&mut out, &mut tally);
        let (used, size) = stack_use();
        let _ = writeln!(out, "# stack: chat scenario {used} B deep (of {size} B)");
    }
    let ok = seeds::close(&mut out, tally);
    debug::exit(if ok { EXIT_SUCCESS } else { EXIT_FAILURE });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut out = Lines::new();
    let _ = writeln!(out, "# panic: {info}");
    debug::exit(EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    let mut out = Lines::new();
    let _ = writeln!(out, "# HardFault: {frame:?}");
    debug::exit(EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
