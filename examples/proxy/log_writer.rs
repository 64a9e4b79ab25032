//! The proxy's log writer: standard error, in batches on the worker threads.
//!
//! Every stream ends with a log line; written one by one, each is a `write` system call on the
//! thread that serves the streams. A worker thread instead appends lines to a buffer of its own
//! and writes it when it holds [`BATCH_BYTES`], when [`FLUSH_EVERY`] has passed (a task of the
//! thread's runtime flushes it), when the thread stops, and when it panics. Warnings and errors
//! go out at once (after what is buffered, so the order stays), and so does everything logged
//! on other threads (startup, shutdown).

use std::cell::RefCell;
use std::io::Write;
use std::time::Duration;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// A worker thread writes its buffer when it holds this much.
pub const BATCH_BYTES: usize = 64 * 1024;
/// And at least this often (if it holds anything).
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

thread_local! {
    /// `None` on threads that write at once.
    static BATCH: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// The `MakeWriter` for `tracing_subscriber::fmt`: standard error, batched on worker threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchedStderr;

/// Writes one formatted line (`tracing_subscriber` writes each in one `write_all`).
pub struct LineWriter {
    urgent: bool,
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { urgent: true }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        LineWriter {
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

impl Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let batched = BATCH
            .try_with(|batch| {
                let mut batch = batch.borrow_mut();
                let buffer = batch.as_mut()?;
                buffer.extend_from_slice(line);
                if self.urgent || buffer.len() >= BATCH_BYTES {
                    write_out(buffer);
                }
                Some(())
            })
            .ok()
            .flatten();
        if batched.is_none() {
            std::io::stderr().lock().write_all(line)?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_out(buffer: &mut Vec<u8>) {
    if !buffer.is_empty() {
        // Nowhere to report a failure to write the log.
        let _ = std::io::stderr().lock().write_all(buffer);
        buffer.clear();
    }
}

/// Writes what this thread has buffered.
pub fn flush_this_thread() {
    let _ = BATCH.try_with(|batch| {
        if let Some(buffer) = batch.borrow_mut().as_mut() {
            write_out(buffer);
        }
    });
}

/// Batches this thread's lines until the returned guard drops (which writes what is left).
/// Call [`flush_every_interval`] on the thread's runtime too.
pub fn batch_this_thread() -> BatchGuard {
    BATCH.with(|batch| *batch.borrow_mut() = Some(Vec::with_capacity(BATCH_BYTES)));
    BatchGuard(())
}

/// Ends batching on its thread (see [`batch_this_thread`]).
pub struct BatchGuard(());

impl Drop for BatchGuard {
    fn drop(&mut self) {
        flush_this_thread();
        let _ = BATCH.try_with(|batch| batch.borrow_mut().take());
    }
}

/// Flushes this thread's buffer every [`FLUSH_EVERY`]; spawn it on the thread's
/// single-threaded runtime.
pub async fn flush_every_interval() {
    let mut ticks = tokio::time::interval(FLUSH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        flush_this_thread();
    }
}

/// A panic writes the panicking thread's buffer before the panic message.
pub fn flush_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        flush_this_thread();
        default(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffered() -> usize {
        BATCH.with(|batch| batch.borrow().as_ref().map_or(0, Vec::len))
    }

    #[test]
    fn lines_wait_in_the_batch_until_it_is_full_or_urgent() {
        let guard = batch_this_thread();
        let mut info = LineWriter { urgent: false };
        info.write_all(b"one\n").unwrap();
        info.write_all(b"two\n").unwrap();
        assert_eq!(buffered(), 8);
        LineWriter { urgent: true }.write_all(b"warn\n").unwrap();
        assert_eq!(buffered(), 0, "a warning writes the batch and itself");
        let line = vec![b'x'; BATCH_BYTES / 2 + 1];
        info.write_all(&line).unwrap();
        assert_eq!(buffered(), line.len());
        info.write_all(&line).unwrap();
        assert_eq!(buffered(), 0, "a full batch is written");
        info.write_all(b"three\n").unwrap();
        drop(guard);
        assert_eq!(buffered(), 0);
        // Not batching: written at once.
        info.write_all(b"four\n").unwrap();
        assert_eq!(buffered(), 0);
    }
}
