//! The core's echo server (`asyncore_core::echo::Echo`) on a Cortex-M4F, over a
//! made-up memory-mapped network peripheral, built only to measure code size: the
//! registers are read and written with volatile accesses so nothing is optimised
//! away, and it is never run.
#![no_std]
#![no_main]

use core::ptr::{read_volatile, write_volatile};
use core::time::Duration;

use asyncore_core::echo::Echo;
use asyncore_core::{
    Events, Interest, Reactor, Readiness, Recv, Registrations, Selector, Sent, Socket, SocketError,
    SourceError, State, Token, With,
};

/// The peripheral: per socket, a readiness register, a data register, a length
/// register; one accept register and one close register.
const BASE: usize = 0x4000_0000;
const READY: usize = BASE;
const DATA: usize = BASE + 0x100;
const LEN: usize = BASE + 0x200;
const ACCEPT: usize = BASE + 0x300;
const CLOSE: usize = BASE + 0x304;

fn reg8(addr: usize) -> u8 {
    // SAFETY: a device register of the made-up peripheral (never executed).
    unsafe { read_volatile(addr as *const u8) }
}

fn set8(addr: usize, v: u8) {
    // SAFETY: as `reg8`.
    unsafe { write_volatile(addr as *mut u8, v) }
}

/// A socket of the peripheral.
struct HwSocket(u8);

impl Socket for HwSocket {
    type Source = u8;
    fn source(&self) -> u8 {
        self.0
    }
    fn initial_state(&mut self) -> State {
        if self.0 == 0 {
            State::Listening
        } else {
            State::Connected
        }
    }
    fn recv(&mut self, buf: &mut [u8]) -> Result<Recv, SocketError> {
        let n = (reg8(LEN + self.0 as usize) as usize).min(buf.len());
        if n == 0 {
            return Ok(Recv::WouldBlock);
        }
        for b in &mut buf[..n] {
            *b = reg8(DATA + self.0 as usize);
        }
        Ok(Recv::Data(n))
    }
    fn send(&mut self, buf: &[u8]) -> Result<Sent, SocketError> {
        for &b in buf {
            set8(DATA + self.0 as usize, b);
        }
        Ok(Sent::Bytes(buf.len()))
    }
    fn accept(&mut self) -> Result<Option<Self>, SocketError> {
        match reg8(ACCEPT) {
            0 => Ok(None),
            id => Ok(Some(HwSocket(id))),
        }
    }
    fn close(&mut self) -> Result<(), SocketError> {
        set8(CLOSE, self.0);
        Ok(())
    }
}

/// Reads each registered source's readiness register; spins until one is ready.
/// Its 8 sources always fit in a reactor's event batch (`EVENT_BATCH`, 32), so a
/// wait never leaves anything for `select_more`: the provided one (nothing more)
/// is right.
struct HwSelector {
    regs: Registrations<u8, 8>,
}

impl Selector for HwSelector {
    type Source = u8;
    type Error = ();
    fn register(
        &mut self,
        token: Token,
        source: u8,
        interest: Interest,
    ) -> Result<(), SourceError> {
        self.regs.register(token, source, interest)
    }
    fn reregister(
        &mut self,
        token: Token,
        source: u8,
        _: Interest,
        interest: Interest,
    ) -> Result<(), SourceError> {
        self.regs.reregister(token, source, interest)
    }
    fn deregister(&mut self, token: Token, _: u8, _: Interest) {
        self.regs.deregister(token);
    }
    fn select(&mut self, events: &mut Events<'_>, _timeout: Option<Duration>) -> Result<usize, ()> {
        loop {
            let mut n = 0;
            for r in self.regs.watched() {
                let ready = Readiness::from_bits_truncate(reg8(READY + r.source as usize))
                    .masked_by(r.interest);
                if !ready.is_empty() && events.push(r.token, ready) {
                    n += 1;
                }
            }
            if n > 0 {
                return Ok(n);
            }
            core::hint::spin_loop();
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    let mut r: Reactor<With<HwSelector, HwSocket>, Echo<HwSocket, 256>, 8> =
        Reactor::new(HwSelector {
            regs: Registrations::new(),
        });
    let _ = r.add(HwSocket(0), Echo::listener(7));
    loop {
        let _ = r.poll_once(None);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
