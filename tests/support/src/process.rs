//! A server binary run as a child process, for tests that must stop or kill a real process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed (and reaped) when dropped, so a failing test leaves none behind.
pub struct ChildProcess(pub Child);

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` (a server told to listen on port 0) and reads the address it listens on
/// from its "listening on http://ADDR" log line, within `within`; the rest of its standard
/// error is copied to the test's output, each line prefixed with `name`.
pub fn start_listening(
    mut command: Command,
    name: &'static str,
    within: Duration,
) -> (ChildProcess, SocketAddr) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("piped");
    let process = ChildProcess(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("{name}: {line}");
            if let Some((_, addr)) = line.split_once("listening on http://") {
                let addr = addr.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(addr.parse::<SocketAddr>());
            }
        }
    });
    let addr = rx
        .recv_timeout(within)
        .unwrap_or_else(|_| panic!("{name} logs the address it listens on within {within:?}"))
        .expect("a socket address in the \"listening on\" line");
    (process, addr)
}
