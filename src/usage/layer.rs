use super::UsageLastChunk;
use tower_layer::Layer;

/// Applies [`UsageLastChunk`] to a service. See the [module docs](crate::usage).
#[derive(Debug, Clone, Default)]
pub struct UsageLastChunkLayer {
    _private: (),
}

impl UsageLastChunkLayer {
    /// The usage-to-last-chunk normalizer.
    #[must_use]
    pub fn new() -> Self {
        UsageLastChunkLayer::default()
    }
}

impl<S> Layer<S> for UsageLastChunkLayer {
    type Service = UsageLastChunk<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UsageLastChunk { inner }
    }
}
