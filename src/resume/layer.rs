use super::{Producers, Resume, StreamStore};
use std::time::Duration;
use tower_layer::Layer;

/// Applies [`Resume`] to a service. See the [module docs](crate::resume).
///
/// ```
/// use tower_llm_stream::resume::{MemoryStore, ResumeLayer};
///
/// let layer = ResumeLayer::new(MemoryStore::new()).ttl(std::time::Duration::from_secs(600));
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ResumeLayer<St> {
    store: St,
    ttl: Duration,
    producers: Option<Producers>,
}

impl<St: StreamStore> ResumeLayer<St> {
    /// Resumable streams kept in `store`, for 600 s after their last event.
    pub fn new(store: St) -> Self {
        ResumeLayer {
            store,
            ttl: Duration::from_secs(600),
            producers: None,
        }
    }

    /// How long a stream stays resumable after its last event.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Counts its producer tasks in `producers`, for a graceful shutdown to wait for.
    ///
    /// ```
    /// use tower_llm_stream::resume::{MemoryStore, Producers, ResumeLayer};
    ///
    /// let producers = Producers::new();
    /// let layer = ResumeLayer::new(MemoryStore::new()).producers(producers.clone());
    /// # let _ = layer;
    /// ```
    pub fn producers(mut self, producers: Producers) -> Self {
        self.producers = Some(producers);
        self
    }
}

impl<S, St: Clone> Layer<S> for ResumeLayer<St> {
    type Service = Resume<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        Resume {
            inner,
            store: self.store.clone(),
            ttl: self.ttl,
            producers: self.producers.clone(),
        }
    }
}
