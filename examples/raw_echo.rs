//! A raw echo server written directly on `poll(2)`, `select(2)` or `epoll(7)`: the
//! reference ("the limit for this design") the echo load benchmark compares our
//! reactor with.
//!
//! ```text
//! cargo run --release --example raw_echo -- [ADDR] [--backend poll|select|epoll]
//! ```
//!
//! It prints `listening on ADDR` (port 0 picks a free port) and serves until killed.
//! It does what the design needs and nothing more, with the same choices as the
//! `echo_server` example so that only the abstraction differs:
//!
//! * one wait per pass over all connections, level-triggered; read interest asks for
//!   priority data too (`POLLIN | POLLPRI`; select's read *and* except sets;
//!   `EPOLLIN | EPOLLPRI`), as asyncore's does; epoll's interest list is kept by the
//!   kernel and changed (`epoll_ctl`) only when a connection switches between reading
//!   and writing;
//! * one 64 KiB read buffer shared by every connection, as a hand-written loop has
//!   it: one `recv` per readiness into it, then one `send` of what came; what the
//!   socket did not take goes to a per-connection backlog (a `Vec`), and write
//!   interest is asked only while a backlog is left;
//! * up to 16 accepts per listener readiness (`ACCEPT_BATCH`), `accept4` with
//!   `SOCK_NONBLOCK | SOCK_CLOEXEC`, `TCP_NODELAY` (as `echo_server --nodelay`),
//!   `MSG_NOSIGNAL` on sends, a 250 ms wait timeout.
//!
//! No timers, no tokens, no dispatch: per ready connection it costs the system calls
//! and a few branches.

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;

use nix::libc;
use nix::sys::select::{FD_SETSIZE, FdSet};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, getsockname, listen, setsockopt,
    socket, sockopt,
};

/// The read buffer every connection shares.
const BUF: usize = 64 * 1024;
const ACCEPT_BATCH: usize = 16;

struct Conn {
    fd: OwnedFd,
    /// What `send` did not take: `backlog[sent..]`.
    backlog: Vec<u8>,
    sent: usize,
}

/// What to do with a connection after its readiness was handled.
enum Next {
    Read,
    Write,
    Close,
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl Conn {
    fn pending(&self) -> bool {
        self.sent < self.backlog.len()
    }

    /// Sends `data`; returns how much went out, or `Err(Next)` to stop at.
    fn send(&self, data: &[u8]) -> Result<usize, Next> {
        // SAFETY: sending from initialised bytes we hold a borrow of.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            return match errno() {
                libc::EAGAIN | libc::EINTR => Ok(0),
                _ => Err(Next::Close),
            };
        }
        Ok(n as usize)
    }

    /// Sends what is pending in the backlog.
    fn flush(&mut self) -> Next {
        match self.send(&self.backlog[self.sent..]) {
            Err(next) => next,
            Ok(n) => {
                self.sent += n;
                if self.pending() {
                    Next::Write
                } else {
                    self.backlog.clear();
                    self.sent = 0;
                    Next::Read
                }
            }
        }
    }

    /// One readiness: flush the backlog if there is one, else one recv into the
    /// shared buffer and one send of what came; the rest goes to the backlog.
    fn ready(&mut self, buf: &mut [u8], readable: bool, writable: bool) -> Next {
        if self.pending() {
            return if writable { self.flush() } else { Next::Write };
        }
        if !readable {
            return Next::Read;
        }
        // SAFETY: receiving into the shared buffer, which the caller lends us.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        match n {
            0 => Next::Close,
            n if n < 0 => match errno() {
                libc::EAGAIN | libc::EINTR => Next::Read,
                _ => Next::Close,
            },
            n => {
                let n = n as usize;
                match self.send(&buf[..n]) {
                    Err(next) => next,
                    Ok(sent) if sent == n => Next::Read,
                    Ok(sent) => {
                        self.backlog.extend_from_slice(&buf[sent..n]);
                        Next::Write
                    }
                }
            }
        }
    }
}

fn listener(addr: SocketAddr) -> Result<OwnedFd, String> {
    let SocketAddr::V4(v4) = addr else {
        return Err("IPv4 only".into());
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| e.to_string())?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| e.to_string())?;
    bind(fd.as_raw_fd(), &SockaddrIn::from(v4)).map_err(|e| e.to_string())?;
    listen(&fd, Backlog::new(1024).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    Ok(fd)
}

/// Accepts up to `ACCEPT_BATCH` connections.
fn accept(listener: RawFd, mut add: impl FnMut(OwnedFd)) {
    for _ in 0..ACCEPT_BATCH {
        // SAFETY: plain accept4 with no address buffers.
        let fd = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            return;
        }
        // SAFETY: a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // As `echo_server --nodelay`: an echo larger than the buffer leaves in pieces.
        let _ = setsockopt(&fd, sockopt::TcpNoDelay, &true);
        add(fd);
    }
}

fn new_conn(fd: OwnedFd) -> Conn {
    Conn {
        fd,
        backlog: Vec::new(),
        sent: 0,
    }
}

const READ_EVENTS: libc::c_short = libc::POLLIN | libc::POLLPRI;

fn serve_poll(listener: OwnedFd) -> ! {
    let lfd = listener.as_raw_fd();
    // fds[0] is the listener; fds[i + 1] belongs to conns[i].
    let mut fds = vec![libc::pollfd {
        fd: lfd,
        events: libc::POLLIN,
        revents: 0,
    }];
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; BUF];
    loop {
        // SAFETY: `fds` is a valid array of pollfds.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 250) };
        if rc <= 0 {
            continue;
        }
        let mut i = 1;
        while i < fds.len() {
            let re = fds[i].revents;
            if re == 0 {
                i += 1;
                continue;
            }
            let bad = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
            let next = conns[i - 1].ready(
                &mut buf,
                re & (READ_EVENTS | bad) != 0,
                re & (libc::POLLOUT | bad) != 0,
            );
            match next {
                Next::Read => fds[i].events = READ_EVENTS,
                Next::Write => fds[i].events = libc::POLLOUT,
                Next::Close => {
                    // The last entry (not yet handled this pass) moves here.
                    fds.swap_remove(i);
                    conns.swap_remove(i - 1);
                    continue;
                }
            }
            i += 1;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            accept(lfd, |fd| {
                fds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: READ_EVENTS,
                    revents: 0,
                });
                conns.push(new_conn(fd));
            });
        }
    }
}

fn serve_select(listener: OwnedFd) -> ! {
    let lfd = listener.as_raw_fd();
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; BUF];
    loop {
        let mut read = FdSet::new();
        let mut write = FdSet::new();
        let mut except = FdSet::new();
        read.insert(listener.as_fd_borrowed());
        let mut nfds = lfd + 1;
        for c in &conns {
            let fd = c.fd.as_fd_borrowed();
            if c.pending() {
                write.insert(fd);
            } else {
                read.insert(fd);
                except.insert(fd);
            }
            nfds = nfds.max(c.fd.as_raw_fd() + 1);
        }
        let mut tv = nix::sys::time::TimeVal::new(0, 250_000);
        match nix::sys::select::select(nfds, &mut read, &mut write, &mut except, &mut tv) {
            Ok(n) if n > 0 => {}
            _ => continue,
        }
        let mut i = 0;
        while i < conns.len() {
            let fd = conns[i].fd.as_fd_borrowed();
            let (r, w) = (read.contains(fd) || except.contains(fd), write.contains(fd));
            if (r || w) && matches!(conns[i].ready(&mut buf, r, w), Next::Close) {
                // The last connection (not yet handled this pass) moves here.
                conns.swap_remove(i);
                continue;
            }
            i += 1;
        }
        if read.contains(listener.as_fd_borrowed()) {
            accept(lfd, |fd| {
                if (fd.as_raw_fd() as usize) < FD_SETSIZE {
                    conns.push(new_conn(fd));
                }
            });
        }
    }
}

/// `epoll_ctl(epfd, op, fd)` with `events` and `data`; whether it worked.
fn epoll_ctl(epfd: RawFd, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> bool {
    let mut event = libc::epoll_event { events, u64: data };
    // SAFETY: `event` lives on this frame for the call; the kernel copies it.
    unsafe { libc::epoll_ctl(epfd, op, fd, &mut event) == 0 }
}

/// The listener's `epoll_event.u64`; a connection's is its slot.
const LISTENER: u64 = u64::MAX;
const EPOLL_READ: u32 = (libc::EPOLLIN | libc::EPOLLPRI) as u32;
const EPOLL_WRITE: u32 = libc::EPOLLOUT as u32;
const EPOLL_BAD: u32 = (libc::EPOLLERR | libc::EPOLLHUP) as u32;

fn serve_epoll(listener: OwnedFd) -> ! {
    let lfd = listener.as_raw_fd();
    // SAFETY: no pointer; a new fd or -1.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0
        || !epoll_ctl(
            epfd,
            libc::EPOLL_CTL_ADD,
            lfd,
            libc::EPOLLIN as u32,
            LISTENER,
        )
    {
        eprintln!("raw_echo: epoll: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    // Slots of connections with whether they are registered for writing; freed
    // slots are reused. A connection is deregistered before it is closed.
    let mut slots: Vec<Option<(Conn, bool)>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = vec![0u8; BUF];
    loop {
        // SAFETY: `events` holds `len` initialised entries the kernel may write.
        let rc = unsafe {
            libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as libc::c_int, 250)
        };
        if rc <= 0 {
            continue;
        }
        let mut accept_now = false;
        for event in &events[..rc as usize] {
            let (bits, data) = (event.events, event.u64);
            if data == LISTENER {
                accept_now = true;
                continue;
            }
            let slot = data as usize;
            let Some(Some((conn, writing))) = slots.get_mut(slot) else {
                continue;
            };
            let fd = conn.fd.as_raw_fd();
            let next = conn.ready(
                &mut buf,
                bits & (EPOLL_READ | EPOLL_BAD) != 0,
                bits & (EPOLL_WRITE | EPOLL_BAD) != 0,
            );
            match next {
                Next::Read if *writing => {
                    *writing = false;
                    epoll_ctl(epfd, libc::EPOLL_CTL_MOD, fd, EPOLL_READ, data);
                }
                Next::Write if !*writing => {
                    *writing = true;
                    epoll_ctl(epfd, libc::EPOLL_CTL_MOD, fd, EPOLL_WRITE, data);
                }
                Next::Close => {
                    epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, 0, data);
                    slots[slot] = None;
                    free.push(slot);
                }
                Next::Read | Next::Write => {}
            }
        }
        if accept_now {
            accept(lfd, |fd| {
                let slot = free.pop().unwrap_or_else(|| {
                    slots.push(None);
                    slots.len() - 1
                });
                if epoll_ctl(
                    epfd,
                    libc::EPOLL_CTL_ADD,
                    fd.as_raw_fd(),
                    EPOLL_READ,
                    slot as u64,
                ) {
                    slots[slot] = Some((new_conn(fd), false));
                } else {
                    free.push(slot);
                }
            });
        }
    }
}

/// An fd number for an `FdSet`, which would otherwise tie the sets to borrows of
/// the connection list.
trait Borrowed {
    fn as_fd_borrowed(&self) -> std::os::fd::BorrowedFd<'static>;
}

impl Borrowed for OwnedFd {
    fn as_fd_borrowed(&self) -> std::os::fd::BorrowedFd<'static> {
        // SAFETY: an open fd (not -1); the borrow is only used as a number for the
        // sets of one pass, while the connection list still owns the fd.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.as_raw_fd()) }
    }
}

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut backend = "poll".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" => backend = args.next().unwrap_or_default(),
            s if !s.starts_with('-') => addr = s.to_string(),
            s => {
                eprintln!(
                    "raw_echo: unknown option {s}\nusage: raw_echo [ADDR] [--backend poll|select|epoll]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let sa: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("raw_echo: bad address {addr}");
            return ExitCode::from(2);
        }
    };
    let l = match listener(sa) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("raw_echo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shown = getsockname::<SockaddrIn>(l.as_raw_fd())
        .map(|a| a.to_string())
        .unwrap_or(addr);
    println!("listening on {shown}");
    let _ = std::io::stdout().flush();
    match backend.as_str() {
        "poll" => serve_poll(l),
        "select" => serve_select(l),
        "epoll" => serve_epoll(l),
        other => {
            eprintln!("raw_echo: unknown backend {other} (poll, select or epoll)");
            ExitCode::from(2)
        }
    }
}
