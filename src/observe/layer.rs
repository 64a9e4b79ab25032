use super::{Observe, OnStreamEnd};
use tower_layer::Layer;

/// Applies [`Observe`] to a service. See the [module docs](crate::observe).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ObserveLayer<C = ()> {
    on_end: C,
}

impl ObserveLayer {
    /// A span per stream and its "stream ended" event; no callback.
    pub fn new() -> Self {
        ObserveLayer { on_end: () }
    }
}

impl<C> ObserveLayer<C> {
    /// Calls `on_end` with each stream's [`StreamSummary`](super::StreamSummary), once, when
    /// the stream ends or is dropped.
    ///
    /// ```
    /// use tower_llm_stream::observe::{ObserveLayer, StreamSummary};
    ///
    /// let layer = ObserveLayer::new().on_stream_end(|summary: &StreamSummary| {
    ///     let tokens = summary.usage.output_tokens.unwrap_or(0);
    ///     println!("{:?} used {tokens} output tokens", summary.model);
    /// });
    /// # let _ = layer;
    /// ```
    pub fn on_stream_end<C2: OnStreamEnd>(self, on_end: C2) -> ObserveLayer<C2> {
        ObserveLayer { on_end }
    }
}

impl<S, C: Clone> Layer<S> for ObserveLayer<C> {
    type Service = Observe<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            on_end: self.on_end.clone(),
        }
    }
}
