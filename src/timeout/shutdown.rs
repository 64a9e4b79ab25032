use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, futures::OwnedNotified};

/// A signal that ends every open stream of the [`StreamTimeoutLayer`](super::StreamTimeoutLayer)
/// that holds it: for a server whose grace period is over.
///
/// Once [`trigger`](Self::trigger)ed, a stream still open ends with the error
/// [`ShuttingDown`](crate::StreamError::ShuttingDown) (the error event `server_shutting_down`,
/// in the client's API when [`RenderLayer`](crate::RenderLayer) is on top), and a request
/// still waiting for its response head gets a `503` of the same code. Nothing is cut without
/// a word. Streams only look at the signal when their upstream has nothing ready, so the
/// signal costs nothing per event.
///
/// ```
/// use tower_llm_stream::timeout::{Shutdown, StreamTimeoutLayer};
///
/// let shutdown = Shutdown::new();
/// let layer = StreamTimeoutLayer::new().shutdown(shutdown.clone());
/// # let _ = layer;
/// // At the end of the server's grace period:
/// shutdown.trigger();
/// assert!(shutdown.is_triggered());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    notify: Arc<Notify>,
    triggered: Arc<AtomicBool>,
}

impl Shutdown {
    /// A signal not yet triggered.
    #[must_use]
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Ends every open stream (and every stream started from now on) of the layers that hold
    /// this signal.
    pub fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether [`trigger`](Self::trigger) was called.
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    /// A future that completes when the signal is triggered: `None` when it already was.
    pub(crate) fn watch(&self) -> Option<OwnedNotified> {
        // Made before the flag is read: a trigger in between still wakes it.
        let notified = self.notify.clone().notified_owned();
        (!self.is_triggered()).then_some(notified)
    }
}
