//! A `redis-server` of a test's own, on a free loopback port (killed when dropped), and a
//! small RESP client to look at it: the harness of the Redis store's tests, the library's and
//! the proxy's.
//!
//! Without `redis-server` installed, [`RedisServer::start`] says why the test is skipped and
//! gives `None`; under CI (which installs it: `.ci/run`) it fails instead.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a free loopback port, without persistence; killed on drop.
pub struct RedisServer {
    child: Child,
    /// Its loopback port.
    pub port: u16,
}

impl RedisServer {
    /// A running server, or `None` (after saying so) when `redis-server` is not installed.
    pub fn start() -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed: CI installs it (.ci/run)"
            );
            eprintln!(
                "SKIPPED: redis-server is not installed, so the Redis store is not tested \
                 (apt-get install redis-server)"
            );
            return None;
        }
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(command(port, &["PING"]), Ok(Reply::Status(s)) if s == "PONG") {
                    return Some(RedisServer { child, port });
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // The port was taken meanwhile: another one.
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs a command on a connection of its own.
    pub fn cmd(&self, args: &[&str]) -> Reply {
        command(self.port, args).expect("redis answers")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reply of a RESP2 server.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Status(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
    Error(String),
}

/// One command to the Redis on `port`, by hand (the test needs no client of its own).
pub fn command(port: u16, args: &[&str]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    stream.write_all(&out)?;
    reply(&mut BufReader::new(stream))
}

fn reply(r: &mut impl BufRead) -> std::io::Result<Reply> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let line = line.trim_end();
    let (kind, rest) = line.split_at(1.min(line.len()));
    let bad = || std::io::Error::other(format!("bad reply {line:?}"));
    Ok(match kind {
        "+" => Reply::Status(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            if len < 0 {
                Reply::Bulk(None)
            } else {
                let mut bytes = vec![0; len as usize + 2];
                r.read_exact(&mut bytes)?;
                bytes.truncate(len as usize);
                Reply::Bulk(Some(bytes))
            }
        }
        "*" => {
            let len: i64 = rest.parse().map_err(|_| bad())?;
            let mut items = Vec::new();
            for _ in 0..len.max(0) {
                items.push(reply(r)?);
            }
            Reply::Array(items)
        }
        _ => return Err(bad()),
    })
}

/// The keys of the Redis matching `pattern`.
pub fn keys(server: &RedisServer, pattern: &str) -> Vec<String> {
    let Reply::Array(items) = server.cmd(&["KEYS", pattern]) else {
        panic!("KEYS answered no array")
    };
    let mut keys: Vec<String> = items
        .into_iter()
        .map(|item| match item {
            Reply::Bulk(Some(key)) => String::from_utf8(key).unwrap(),
            other => panic!("a key {other:?}"),
        })
        .collect();
    keys.sort();
    keys
}
