//! The producers a server is running: what its graceful shutdown waits for.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// A count of the producer tasks of the [`ResumeLayer`](super::ResumeLayer)s it is given to
/// ([`ResumeLayer::producers`](super::ResumeLayer::producers)): a resumable stream runs on
/// after its client has gone, so a server that shuts down gracefully waits for these as it
/// waits for its connections, then ends the rest (their stored last event says why) rather
/// than dropping them, which would leave their readers waiting out the lease.
///
/// Clones count the same producers.
///
/// ```
/// use tower_llm_stream::resume::{MemoryStore, Producers, ResumeLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let producers = Producers::new();
/// let layer = ResumeLayer::new(MemoryStore::new()).producers(producers.clone());
/// # let _ = layer;
/// assert_eq!(producers.running(), 0);
/// producers.finished().await; // at once: none is running
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Producers(Arc<Count>);

#[derive(Debug, Default)]
struct Count {
    running: AtomicUsize,
    none_left: Notify,
}

impl Producers {
    /// A count of none.
    #[must_use]
    pub fn new() -> Self {
        Producers::default()
    }

    /// How many are running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.0.running.load(Ordering::Acquire)
    }

    /// Resolves when none is running.
    pub async fn finished(&self) {
        loop {
            let notified = self.0.none_left.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Counts one more until the returned guard is dropped.
    pub(super) fn start(&self) -> Running {
        self.0.running.fetch_add(1, Ordering::AcqRel);
        Running(self.0.clone())
    }
}

/// One running producer, counted until dropped.
pub(super) struct Running(Arc<Count>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}
