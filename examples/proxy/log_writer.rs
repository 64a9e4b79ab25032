//! The proxy's log writer: standard error, in batches on the worker threads.
//!
//! Every stream ends with a log line; written one by one, each is a `write` system call on the
//! thread that serves the streams. A worker thread instead appends lines to a buffer of its own
//! and writes it when it holds [`BATCH_BYTES`], [`FLUSH_EVERY`] after a line entered the empty
//! buffer (a task of the thread's runtime, asleep while nothing waits: an idle proxy does not
//! wake up for its log), when the thread stops, and when it panics. Warnings and errors go out
//! at once (after what is buffered, so the order stays), and so does everything logged on
//! other threads (startup, shutdown).

use std::cell::RefCell;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// A worker thread writes its buffer when it holds this much.
pub const BATCH_BYTES: usize = 64 * 1024;
/// A line waits in the buffer at most this long.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A worker thread's buffered lines.
struct Batch {
    lines: Vec<u8>,
    /// Told when a line enters the empty buffer: the flushing task starts its wait.
    waiting: Arc<Notify>,
}

thread_local! {
    /// `None` on threads that write at once.
    static BATCH: RefCell<Option<Batch>> = const { RefCell::new(None) };
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
                let batch = batch.as_mut()?;
                let was_empty = batch.lines.is_empty();
                batch.lines.extend_from_slice(line);
                if self.urgent || batch.lines.len() >= BATCH_BYTES {
                    write_out(&mut batch.lines);
                } else if was_empty {
                    batch.waiting.notify_one();
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
        if let Some(batch) = batch.borrow_mut().as_mut() {
            write_out(&mut batch.lines);
        }
    });
}

/// Batches this thread's lines until the returned guard drops (which writes what is left).
/// Call [`flush_when_lines_wait`] on the thread's runtime too.
pub fn batch_this_thread() -> BatchGuard {
    BATCH.with(|batch| {
        *batch.borrow_mut() = Some(Batch {
            lines: Vec::with_capacity(BATCH_BYTES),
            waiting: Arc::new(Notify::new()),
        })
    });
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

/// Writes this thread's buffer [`FLUSH_EVERY`] after a line entered it empty, and sleeps
/// while nothing waits; spawn it on the thread's single-threaded runtime, after
/// [`batch_this_thread`] (without it, there is nothing to flush and it returns at once).
pub async fn flush_when_lines_wait() {
    let Some(waiting) = BATCH.with(|batch| batch.borrow().as_ref().map(|b| b.waiting.clone()))
    else {
        return;
    };
    loop {
        waiting.notified().await;
        tokio::time::sleep(FLUSH_EVERY).await;
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
        BATCH.with(|batch| batch.borrow().as_ref().map_or(0, |b| b.lines.len()))
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

    /// The flushing task sleeps until a line waits and writes it [`FLUSH_EVERY`] after it
    /// came, not on a fixed tick: a line written 30 ms past a tick is still buffered 90 ms
    /// later (a ticker would have written it 70 ms in), then written.
    #[tokio::test(start_paused = true)]
    async fn a_waiting_line_is_written_flush_every_after_it_came() {
        let _guard = batch_this_thread();
        let flusher = tokio::spawn(flush_when_lines_wait());
        tokio::time::sleep(FLUSH_EVERY * 10 + Duration::from_millis(30)).await;
        let mut info = LineWriter { urgent: false };
        for round in 0..2 {
            info.write_all(b"one\n").unwrap();
            info.write_all(b"two\n").unwrap();
            tokio::time::sleep(FLUSH_EVERY - Duration::from_millis(10)).await;
            assert_eq!(buffered(), 8, "round {round}: not yet");
            tokio::time::sleep(Duration::from_millis(11)).await;
            assert_eq!(
                buffered(),
                0,
                "round {round}: written FLUSH_EVERY after the first line"
            );
            tokio::time::sleep(Duration::from_millis(33)).await;
        }
        flusher.abort();
    }
}
