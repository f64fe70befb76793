//! The epoll fd is close-on-exec, made on first use, and closed on drop.
//!
//! Its own test binary with a single test: it checks that a dropped selector's fd
//! number is closed, which another test opening fds in parallel could make untrue.

use std::{os::fd::AsRawFd, process::Command};

use asyncore_core::{Interest, Selector, Token};
use asyncore_epoll::EpollSelector;
use nix::{
    errno::Errno,
    fcntl::FdFlag,
    libc,
    sys::socket::{AddressFamily, SockFlag, SockType, socketpair},
};

/// `fcntl(fd, F_GETFD)` on a raw fd number.
fn fd_flags(fd: i32) -> Result<FdFlag, Errno> {
    // SAFETY: F_GETFD reads the fd's flags and nothing else; a closed number is
    // EBADF. No pointer is involved.
    let rc = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    Errno::result(rc).map(FdFlag::from_bits_truncate)
}

#[test]
fn the_epoll_fd_is_cloexec_lazy_and_closed_on_drop() {
    let (a, _b) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair");
    let mut sel = EpollSelector::<4>::new();
    assert_eq!(sel.epoll_fd(), None, "new() makes no fd");
    sel.register(Token::new(0, 0), a.as_raw_fd(), Interest::READABLE)
        .expect("register");
    let epfd = sel.epoll_fd().expect("made by the first register");
    assert_eq!(sel.open(), Ok(epfd));

    let flags = fd_flags(epfd).expect("F_GETFD on the epoll fd");
    assert!(flags.contains(FdFlag::FD_CLOEXEC), "{flags:?}");
    let link = std::fs::read_link(format!("/proc/self/fd/{epfd}")).expect("readlink");
    assert_eq!(link.to_string_lossy(), "anon_inode:[eventpoll]");

    // An exec'd child does not get it: its fd table has no epoll instance.
    let out = Command::new("/bin/sh")
        .args(["-c", "ls -l /proc/self/fd/"])
        .output()
        .expect("run /bin/sh");
    assert!(out.status.success(), "{out:?}");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("/proc/"), "a listing: {listing}");
    assert!(
        !listing.contains("eventpoll"),
        "the child inherited an epoll fd:\n{listing}"
    );

    // Without FD_CLOEXEC the same child would see it: the check can fail.
    // SAFETY: F_DUPFD duplicates the open epoll fd (owned by `sel`, alive here) to a
    // new number without FD_CLOEXEC; no pointer is involved.
    let inherited =
        Errno::result(unsafe { libc::fcntl(epfd, libc::F_DUPFD, 64) }).expect("F_DUPFD");
    let out = Command::new("/bin/sh")
        .args(["-c", "ls -l /proc/self/fd/"])
        .output()
        .expect("run /bin/sh");
    assert!(String::from_utf8_lossy(&out.stdout).contains("eventpoll"));
    // SAFETY: `inherited` was just returned by F_DUPFD and nothing else owns it.
    assert_eq!(unsafe { libc::close(inherited) }, 0);

    drop(sel);
    assert_eq!(fd_flags(epfd), Err(Errno::EBADF), "closed on drop");
}
