use super::{ClientApi, Render};
use tower_layer::Layer;

/// Renders the standard chat stream in the API each request's [`ClientApi`] extension names.
/// See the [module docs](crate::render).
///
/// ```
/// use tower_llm_stream::render::{ClientApi, RenderLayer};
///
/// // Requests without a `ClientApi` extension get Anthropic Messages here.
/// let layer = RenderLayer::new().default_api(ClientApi::AnthropicMessages);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderLayer {
    default_api: ClientApi,
}

impl RenderLayer {
    /// Renders per each request's [`ClientApi`] extension; without one, OpenAI chat (the
    /// standard stream, untouched).
    #[must_use]
    pub fn new() -> Self {
        RenderLayer::default()
    }

    /// The API of requests that carry no [`ClientApi`] extension.
    #[must_use]
    pub fn default_api(mut self, api: ClientApi) -> Self {
        self.default_api = api;
        self
    }
}

impl<S> Layer<S> for RenderLayer {
    type Service = Render<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Render {
            inner,
            default_api: self.default_api,
        }
    }
}
