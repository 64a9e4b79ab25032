//! What the proxy does to each client connection beyond HTTP: a write-side stall rule, and
//! the default connection limit.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tower_llm_stream::observe::ClientStall;

/// A client socket that fails its writes once the client has read nothing for `idle`: a
/// client that stops reading would otherwise hold its stream, its buffers and its upstream
/// connection for as long as the upstream goes on. The connection is dropped (so is its
/// upstream request), the [`ClientStall`] marked (the stream logs `client_stalled`).
///
/// The timer is armed only while a write is blocked, and re-armed, not reallocated.
pub struct StallGuard {
    io: TcpStream,
    idle: Duration,
    stall: ClientStall,
    peer: SocketAddr,
    /// Fires `idle` after the first blocked write since the last one that went through.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
}

impl StallGuard {
    /// Guards `io`: writes fail after `idle` without progress.
    pub fn new(io: TcpStream, idle: Duration, stall: ClientStall, peer: SocketAddr) -> Self {
        StallGuard {
            io,
            idle,
            stall,
            peer,
            timer: None,
            armed: false,
        }
    }

    /// A write is blocked: `Pending` until the client reads, an error once it has read nothing
    /// for the idle time.
    fn blocked<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.armed {
            let deadline = Instant::now() + self.idle;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        let timer = self.timer.as_mut().expect("armed above");
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.stall.mark();
        tracing::warn!(
            peer = %self.peer,
            outcome = "client_stalled",
            idle = ?self.idle,
            "the client read nothing for the idle timeout: connection dropped, its upstream request cancelled"
        );
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for the idle timeout",
        )))
    }

    fn progressed<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending => self.blocked(cx),
            ready => {
                self.armed = false;
                ready
            }
        }
    }
}

impl AsyncRead for StallGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.progressed(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.progressed(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx);
        self.progressed(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The default `--max-connections`: what the process's open-file limit allows, each proxied
/// stream holding two descriptors (its client and its upstream), 64 kept for the rest; at
/// least 64. Read from `/proc/self/limits` (1024 where there is none).
pub fn default_max_connections() -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|soft| soft.parse::<usize>().ok())
        .unwrap_or(1024);
    (limit.saturating_sub(64) / 2).max(64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_connection_limit_fits_the_file_limit() {
        let n = super::default_max_connections();
        assert!(n >= 64, "{n}");
    }
}
