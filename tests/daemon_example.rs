//! The README's daemon skeleton (`examples/daemon.rs`, shown in full in the README)
//! as a process: it echoes, runs its child on SIGHUP and reports the child's exit,
//! and SIGTERM ends it with status 0. Also checks that the README shows the file as
//! it is, in under 60 lines. The waits only turn a hang into a failure.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn the_readme_shows_the_skeleton_as_it_is() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let source = std::fs::read_to_string(format!("{root}/examples/daemon.rs")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{source}```")),
        "README.md does not show examples/daemon.rs as it is"
    );
    assert!(source.lines().count() < 60, "the skeleton grew to 60 lines");
}

#[test]
fn the_skeleton_echoes_runs_its_child_on_sighup_and_stops_on_sigterm() {
    let Some(bin) = common::peers::example("daemon") else {
        return;
    };
    let mut child = common::peers::command(&bin)
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let pid = Pid::from_raw(child.id() as i32);
    // Lines of stdout (ours, then the child's) and of stderr, as they come.
    let (out_tx, out) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        stdout
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(out_tx.send(l)))
    });
    let (err_tx, err) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        stderr
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(err_tx.send(l)))
    });

    let first = out.recv_timeout(PATIENCE).expect("a first line");
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("got {first:?}"))
        .to_string();
    let mut client = TcpStream::connect(&addr).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");

    kill(pid, Signal::SIGHUP).unwrap();
    // `uptime` (procps) must be installed: a missing one is reported here.
    let exit = err.recv_timeout(PATIENCE).expect("the child's exit");
    assert!(exit.ends_with(": exit status 0"), "{exit:?}");
    let uptime = out.recv_timeout(PATIENCE).expect("the child's output");
    assert!(uptime.contains("load average"), "{uptime:?}");

    kill(pid, Signal::SIGTERM).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < PATIENCE, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "{status:?}");
}
