//! The producers a server is running: what its graceful shutdown waits for, and what a cancel
//! asked of this process stops at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A count of the producer tasks of the [`ResumeLayer`](super::ResumeLayer)s it is given to
/// ([`ResumeLayer::producers`](super::ResumeLayer::producers)): a resumable stream runs on
/// after its client has gone, so a server that shuts down gracefully waits for these as it
/// waits for its connections, then ends the rest (their stored last event says why) rather
/// than dropping them, which would leave their readers waiting out the lease.
///
/// It also stops a producer of this process at once when asked ([`cancel`](Producers::cancel)):
/// a store's cancel reaches a producer at its next heartbeat, on whichever process it runs.
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
    /// The running producers by stream id, each with what wakes it to stop.
    running: Mutex<HashMap<String, Arc<Notify>>>,
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
        self.0.running.lock().expect("the producers' lock").len()
    }

    /// Stops the producer of stream `id` if it runs in this process, at once rather than at
    /// its next heartbeat: it stores the stream's end as cancelled and drops its upstream
    /// request. `false` when no producer of this count has that stream. The store's
    /// [`cancel`](super::StreamStore::cancel) is still what every other process sees.
    ///
    /// ```
    /// let producers = tower_llm_stream::resume::Producers::new();
    /// assert!(!producers.cancel("no-such-stream"));
    /// ```
    // Called for its effect; the answer is for whoever wants to know.
    #[allow(clippy::must_use_candidate)]
    pub fn cancel(&self, id: &str) -> bool {
        let running = self.0.running.lock().expect("the producers' lock");
        match running.get(id) {
            Some(stop) => {
                // A permit: kept if the producer is not waiting this very moment.
                stop.notify_one();
                true
            }
            None => false,
        }
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

    /// Counts the producer of stream `id` until the returned guard is dropped.
    pub(super) fn start(&self, id: &str) -> Running {
        let stop = Arc::new(Notify::new());
        self.0
            .running
            .lock()
            .expect("the producers' lock")
            .insert(id.to_owned(), stop.clone());
        Running {
            count: self.0.clone(),
            id: id.to_owned(),
            stop,
        }
    }
}

/// One running producer, counted until dropped.
pub(super) struct Running {
    count: Arc<Count>,
    id: String,
    /// Notified by [`Producers::cancel`].
    pub(super) stop: Arc<Notify>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.count.running.lock().expect("the producers' lock");
        running.remove(&self.id);
        if running.is_empty() {
            self.count.none_left.notify_waiters();
        }
    }
}
