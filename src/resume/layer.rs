use super::{Resume, StreamStore};
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
}

impl<St: StreamStore> ResumeLayer<St> {
    /// Resumable streams kept in `store`, for 600 s after their last event.
    pub fn new(store: St) -> Self {
        ResumeLayer {
            store,
            ttl: Duration::from_secs(600),
        }
    }

    /// How long a stream stays resumable after its last event.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
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
        }
    }
}
