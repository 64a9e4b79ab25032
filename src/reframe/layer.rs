use super::SseReframe;
use crate::dialect::Passthrough;
use crate::sse::DEFAULT_MAX_EVENT_SIZE;
use tower_layer::Layer;

/// Applies [`SseReframe`] to a service: one complete canonical event per body frame.
///
/// See the [module docs](crate::reframe) for an example.
#[derive(Debug, Clone)]
pub struct SseReframeLayer<D = Passthrough> {
    dialect: D,
    max_event_size: usize,
}

impl Default for SseReframeLayer {
    fn default() -> Self {
        SseReframeLayer::new()
    }
}

impl SseReframeLayer {
    /// A reframer with the [`Passthrough`] dialect and a 16 MiB event limit.
    #[must_use]
    pub fn new() -> Self {
        SseReframeLayer {
            dialect: Passthrough::new(),
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
        }
    }
}

impl<D> SseReframeLayer<D> {
    /// Uses `dialect` (cloned for each response) to translate the upstream's events.
    ///
    /// ```
    /// use tower_llm_stream::dialect::Passthrough;
    /// use tower_llm_stream::reframe::SseReframeLayer;
    ///
    /// let layer = SseReframeLayer::new().dialect(Passthrough::any_end());
    /// ```
    pub fn dialect<D2>(self, dialect: D2) -> SseReframeLayer<D2> {
        SseReframeLayer {
            dialect,
            max_event_size: self.max_event_size,
        }
    }

    /// The largest upstream event accepted, in bytes (16 MiB by default).
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }
}

impl<S, D: Clone> Layer<S> for SseReframeLayer<D> {
    type Service = SseReframe<S, D>;

    fn layer(&self, inner: S) -> Self::Service {
        SseReframe::new(inner, self.dialect.clone(), self.max_event_size)
    }
}
