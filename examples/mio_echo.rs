//! An echo server on mio (epoll, edge-triggered): the peer the echo load benchmark
//! compares with.
//!
//! ```text
//! cargo run --release --example mio_echo -- [ADDR]
//! ```
//!
//! It prints `listening on ADDR` (port 0 picks a free port) and serves until killed.
//! Written as mio's own examples are, with the choices `raw_echo` makes: one 64 KiB
//! read buffer shared by every connection, what a write did not take kept in a
//! per-connection backlog (a `Vec`), `TCP_NODELAY`. The listener is edge-triggered
//! too, so each of its events accepts until `accept` would block (a fixed batch, as
//! the level-triggered loops take, would strand the connections past it until the
//! next one arrives). Each connection is registered once for reading and writing
//! (edge-triggered); a read shorter than the buffer means the socket was drained (a
//! new arrival raises a new edge), so no extra `read` is spent to see `WouldBlock`.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// The read buffer every connection shares.
const BUF: usize = 64 * 1024;
const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    /// What a write did not take: `backlog[sent..]`.
    backlog: Vec<u8>,
    sent: usize,
}

impl Conn {
    /// Writes `data` until it is all out or the socket would block; returns how much
    /// went out, `None` when the connection is gone.
    fn write(&mut self, data: &[u8]) -> Option<usize> {
        let mut done = 0;
        while done < data.len() {
            match self.stream.write(&data[done..]) {
                Ok(0) => return None,
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        Some(done)
    }

    /// Writes the backlog; `false` when the connection is gone.
    fn flush(&mut self) -> bool {
        let backlog = std::mem::take(&mut self.backlog);
        let Some(n) = self.write(&backlog[self.sent..]) else {
            return false;
        };
        self.backlog = backlog;
        self.sent += n;
        if self.sent == self.backlog.len() {
            self.backlog.clear();
            self.sent = 0;
        }
        true
    }

    /// Handles one event; `false` when the connection is to be closed.
    fn event(&mut self, buf: &mut [u8], readable: bool, writable: bool) -> bool {
        if writable && self.sent < self.backlog.len() && !self.flush() {
            return false;
        }
        if !readable {
            return true;
        }
        // Edge-triggered: read until drained, or until a backlog waits for the peer.
        while self.backlog.is_empty() {
            match self.stream.read(buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let Some(sent) = self.write(&buf[..n]) else {
                        return false;
                    };
                    if sent < n {
                        self.backlog.extend_from_slice(&buf[sent..n]);
                        return true;
                    }
                    if n < buf.len() {
                        return true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

fn listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    // mio's bind: SO_REUSEADDR, non-blocking, close-on-exec, backlog 1024.
    TcpListener::bind(addr)
}

fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let Ok(sa) = addr.parse::<SocketAddr>() else {
        eprintln!("mio_echo: bad address {addr}\nusage: mio_echo [ADDR]");
        return ExitCode::from(2);
    };
    let mut listener = match listener(sa) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mio_echo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut poll = Poll::new().expect("epoll");
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("register the listener");
    println!(
        "listening on {}",
        listener.local_addr().map_or(addr, |a| a.to_string())
    );
    let _ = std::io::stdout().flush();

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; BUF];
    loop {
        if let Err(e) = poll.poll(&mut events, Some(Duration::from_millis(250))) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            eprintln!("mio_echo: {e}");
            return ExitCode::FAILURE;
        }
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    let mut stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        // WouldBlock: drained; anything else (EMFILE): give up
                        // until the next edge.
                        Err(_) => break,
                    };
                    // As `echo_server --nodelay`.
                    let _ = stream.set_nodelay(true);
                    let i = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    if poll
                        .registry()
                        .register(
                            &mut stream,
                            Token(i),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_err()
                    {
                        free.push(i);
                        continue;
                    }
                    conns[i] = Some(Conn {
                        stream,
                        backlog: Vec::new(),
                        sent: 0,
                    });
                }
                continue;
            }
            let i = event.token().0;
            let Some(Some(conn)) = conns.get_mut(i) else {
                continue;
            };
            let keep = !event.is_error()
                && conn.event(
                    &mut buf,
                    event.is_readable() || event.is_read_closed(),
                    event.is_writable(),
                );
            if !keep {
                if let Some(mut c) = conns[i].take() {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
                free.push(i);
            }
        }
    }
}
