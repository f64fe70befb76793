//! send uses MSG_NOSIGNAL: with SIGPIPE at its default action (which kills the
//! process), sending to a vanished peer still returns EPIPE. Own test binary: it
//! changes the process's SIGPIPE disposition.

use asyncore_core::{ErrorKind, Socket, errno};
use asyncore_std::StdSocket;
use nix::sys::signal::{SigHandler, Signal, signal};

#[test]
fn send_to_a_closed_peer_is_epipe_not_sigpipe() {
    // SAFETY: restoring the default disposition installs no handler; nothing else in
    // this test binary depends on SIGPIPE being ignored.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.unwrap();
    let (mut a, mut b) = StdSocket::pair().unwrap();
    b.close().unwrap();
    let e = a.send(b"anyone?").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    assert_eq!(e.raw_os_error(), Some(errno::EPIPE));
    assert!(e.is_disconnect());
}
