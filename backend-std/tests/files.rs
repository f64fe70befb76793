//! File channels (the original's `file_wrapper`): regular files and pipes.

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use asyncore_core::{ErrorKind, Interest, Recv, Sent, Socket, State, errno};
use asyncore_std::{Kind, StdSocket};
use common::{TempPath, wait};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};

const DATA: &[u8] = b"It's not dead, it's sleeping!";

/// A temp file holding `DATA`, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> TempFile {
        let path = TempPath::new(tag).0.with_extension("txt");
        std::fs::write(&path, DATA).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn dup_differs_and_outlives_the_original() {
    let tmp = TempFile::new("dup");
    let file = File::open(&tmp.0).unwrap();
    let mut w = StdSocket::file(&file).unwrap();
    assert_ne!(w.as_raw_fd(), file.as_raw_fd());
    assert_eq!(w.kind(), Kind::File);
    assert_eq!(w.initial_state(), State::Connected);
    let fd = w.fd().unwrap();
    assert!(
        FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap())
            .contains(FdFlag::FD_CLOEXEC)
    );
    assert!(
        OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap())
            .contains(OFlag::O_NONBLOCK)
    );
    // The caller may close its own fd.
    drop(file);
    let mut buf = [0u8; 64];
    assert_eq!(w.recv(&mut buf).unwrap(), Recv::Data(DATA.len()));
    assert_eq!(&buf[..DATA.len()], DATA);
}

#[test]
fn sequential_reads_then_eof() {
    let tmp = TempFile::new("seq");
    let file = File::open(&tmp.0).unwrap();
    let mut w = StdSocket::file(&file).unwrap();
    let mut buf = [0u8; 13];
    assert_eq!(w.recv(&mut buf).unwrap(), Recv::Data(13));
    assert_eq!(&buf, b"It's not dead");
    let mut rest = [0u8; 64];
    assert_eq!(w.recv(&mut rest).unwrap(), Recv::Data(16));
    assert_eq!(&rest[..16], b", it's sleeping!");
    assert_eq!(w.recv(&mut rest).unwrap(), Recv::Eof);
    assert_eq!(w.recv(&mut []).unwrap(), Recv::Data(0));
}

#[test]
fn read_after_close_fails() {
    let tmp = TempFile::new("closed");
    let file = File::open(&tmp.0).unwrap();
    let mut w = StdSocket::file(&file).unwrap();
    w.close().unwrap();
    let mut buf = [0u8; 8];
    let e = w.recv(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(errno::EBADF));
    assert_eq!(w.source(), -1);
}

#[test]
fn append_write() {
    let tmp = TempFile::new("append");
    let file = OpenOptions::new().append(true).open(&tmp.0).unwrap();
    let mut w = StdSocket::file(&file).unwrap();
    drop(file);
    assert_eq!(w.send(b"bacon").unwrap(), Sent::Bytes(5));
    w.close().unwrap();
    let mut expected = DATA.to_vec();
    expected.extend_from_slice(b"bacon");
    assert_eq!(std::fs::read(&tmp.0).unwrap(), expected);
}

#[test]
fn close_twice() {
    let tmp = TempFile::new("twice");
    let file = File::open(&tmp.0).unwrap();
    let mut w = StdSocket::file(&file).unwrap();
    w.close().unwrap();
    w.close().unwrap();
    assert!(w.is_closed());
}

#[test]
fn file_channel_has_no_socket_operations() {
    let tmp = TempFile::new("nosock");
    let file = File::open(&tmp.0).unwrap();
    let mut w = StdSocket::file(file.as_fd()).unwrap();
    assert_eq!(w.take_error().unwrap(), None);
    assert_eq!(
        w.accept().map(|_| ()).unwrap_err(),
        asyncore_core::SocketError::UNSUPPORTED
    );
    assert_eq!(
        w.shutdown_write().unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        w.recv_priority(&mut [0; 4]).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(w.local_addr().unwrap_err().kind(), ErrorKind::Unsupported);
    assert!(w.set_reuse_addr().is_err());
}

#[test]
fn pipe_channel() {
    let (r, mut wr) = nix::unistd::pipe().unwrap();
    let mut reader = StdSocket::file(&r).unwrap();
    drop(r);
    let mut buf = [0u8; 16];
    assert_eq!(reader.recv(&mut buf).unwrap(), Recv::WouldBlock);
    let mut wfile = File::from(wr.try_clone().unwrap());
    wfile.write_all(b"ping").unwrap();
    assert!(wait(&reader, Interest::READABLE).is_readable());
    assert_eq!(reader.recv(&mut buf).unwrap(), Recv::Data(4));
    assert_eq!(&buf[..4], b"ping");

    // The write end as a channel: fill the pipe until it would block.
    let mut writer = StdSocket::file(&wr).unwrap();
    wr = nix::unistd::dup(&wr).unwrap(); // keep an fd to drop below
    let chunk = [1u8; 4096];
    let mut would_block = false;
    for _ in 0..1024 {
        match writer.send(&chunk).unwrap() {
            Sent::Bytes(n) => assert!(n > 0),
            Sent::WouldBlock => {
                would_block = true;
                break;
            }
        }
    }
    assert!(would_block, "a pipe fills up");

    // Every write end closed: the reader drains, then sees EOF.
    writer.close().unwrap();
    drop(wfile);
    drop(wr);
    let mut big = [0u8; 65536];
    loop {
        match reader.recv(&mut big).unwrap() {
            Recv::Data(n) => assert!(n > 0),
            Recv::Eof => break,
            Recv::WouldBlock => panic!("no writer left: EOF expected"),
        }
    }
}

#[test]
fn from_owned_file_takes_the_fd_over() {
    let (r, w) = nix::unistd::pipe().unwrap();
    let raw = r.as_raw_fd();
    let mut reader = StdSocket::from_owned_file(r).unwrap();
    assert_eq!(reader.as_raw_fd(), raw);
    drop(w);
    assert_eq!(reader.recv(&mut [0u8; 4]).unwrap(), Recv::Eof);
}
