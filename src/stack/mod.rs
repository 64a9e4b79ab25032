//! The whole stack in one layer: [`LlmStreamLayer`].
//!
//! It applies the seven layers in the one order that works, outermost first:
//! [`RenderLayer`] (the standard stream in the client's API, per the request's
//! [`ClientApi`](crate::render::ClientApi) extension; untouched without one),
//! [`ObserveLayer`] (one span and [`StreamSummary`](crate::observe::StreamSummary) per
//! stream), [`FallbackLayer`] (the request's fallback targets tried until a stream commits;
//! a pass-through for requests without any), [`ErrorEventLayer`] (failures become error events), [`UsageLastChunkLayer`] (usage and
//! finish reasons only in the last chunk), [`StreamTimeoutLayer`] (head, idle and total
//! timeouts) and [`SseReframeLayer`] (whole standard frames, the dialect translated). Each
//! stays available alone for servers that want another arrangement.
//!
//! Apply it to the LLM routes only (axum's `Router::route_layer`, or a nested router), so that
//! other routes' error bodies are left as they are.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_llm_stream::LlmStreamLayer;
//! use tower_llm_stream::provider::{AnyDialect, Endpoint};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // An Anthropic upstream, cut off after its first text delta.
//! let upstream = tower::service_fn(|_req: Request<()>| async {
//!     let body = concat!(
//!         "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",",
//!         "\"model\":\"claude\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
//!         "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,",
//!         "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
//!     );
//!     Ok::<_, std::convert::Infallible>(
//!         Response::builder()
//!             .header("content-type", "text/event-stream")
//!             .body(Full::new(Bytes::from(body)))
//!             .unwrap(),
//!     )
//! });
//! let service = ServiceBuilder::new()
//!     .layer(LlmStreamLayer::new().dialect(AnyDialect::for_provider("anthropic", Endpoint::ChatCompletions)))
//!     .service(upstream);
//!
//! let body = service.oneshot(Request::new(())).await.unwrap().into_body();
//! let text = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
//! assert!(text.contains("\"delta\":{\"content\":\"Hi\"}"));
//! // The stream ended without `message_stop`: an error event, then a clean end.
//! assert!(text.ends_with("\"code\":\"stream_truncated\",\"message\":\"the upstream stream was cut off: the Anthropic stream ended without message_stop\"}}\n\n"));
//! # }
//! ```

use crate::dialect::Passthrough;
use crate::error_event::{ErrorEvent, ErrorEventLayer};
use crate::fallback::{Fallback, FallbackLayer};
use crate::observe::{Observe, ObserveLayer, OnStreamEnd};
use crate::reframe::{SseReframe, SseReframeLayer};
use crate::render::{Render, RenderLayer};
use crate::timeout::{StreamTimeout, StreamTimeoutLayer};
use crate::usage::{UsageLastChunk, UsageLastChunkLayer};
use std::time::Duration;
use tower_layer::Layer;

/// The service [`LlmStreamLayer`] produces: the seven layers around `S`, outermost first.
pub type LlmStream<S, D = Passthrough, C = ()> =
    Render<Observe<Fallback<ErrorEvent<UsageLastChunk<StreamTimeout<SseReframe<S, D>>>>>, C>>;

/// Applies the whole standard-stream stack to a service. See the [module docs](crate::stack).
///
/// ```
/// use std::time::Duration;
/// use http::HeaderName;
/// use tower_llm_stream::{LlmStreamLayer, StreamTimeoutLayer};
/// use tower_llm_stream::provider::{AnyDialect, Endpoint};
///
/// let layer = LlmStreamLayer::new()
///     .dialect(AnyDialect::for_provider("gemini", Endpoint::ChatCompletions))
///     .timeout_layer(
///         StreamTimeoutLayer::new()
///             .timeout(Duration::from_secs(60))
///             .override_header(HeaderName::from_static("x-request-timeout"), Duration::from_secs(600)),
///     );
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct LlmStreamLayer<D = Passthrough, C = ()> {
    render: RenderLayer,
    observe: ObserveLayer<C>,
    fallback: FallbackLayer,
    error_event: ErrorEventLayer,
    usage: UsageLastChunkLayer,
    timeout: StreamTimeoutLayer,
    reframe: SseReframeLayer<D>,
}

impl Default for LlmStreamLayer {
    fn default() -> Self {
        LlmStreamLayer::new()
    }
}

impl LlmStreamLayer {
    /// Every layer with its defaults: the [`Passthrough`] dialect (OpenAI-compatible
    /// upstreams), 30 s for the head and between events.
    pub fn new() -> Self {
        LlmStreamLayer {
            render: RenderLayer::new(),
            observe: ObserveLayer::new(),
            fallback: FallbackLayer::new(),
            error_event: ErrorEventLayer::new(),
            usage: UsageLastChunkLayer::new(),
            timeout: StreamTimeoutLayer::new(),
            reframe: SseReframeLayer::new(),
        }
    }
}

impl<D, C> LlmStreamLayer<D, C> {
    /// Translates the upstream with `dialect` (see [`SseReframeLayer::dialect`]).
    pub fn dialect<D2>(self, dialect: D2) -> LlmStreamLayer<D2, C> {
        LlmStreamLayer {
            render: self.render,
            observe: self.observe,
            fallback: self.fallback,
            error_event: self.error_event,
            usage: self.usage,
            timeout: self.timeout,
            reframe: self.reframe.dialect(dialect),
        }
    }

    /// Calls `on_end` with each stream's summary (see [`ObserveLayer::on_stream_end`]).
    pub fn on_stream_end<C2: OnStreamEnd>(self, on_end: C2) -> LlmStreamLayer<D, C2> {
        LlmStreamLayer {
            render: self.render,
            observe: self.observe.on_stream_end(on_end),
            fallback: self.fallback,
            error_event: self.error_event,
            usage: self.usage,
            timeout: self.timeout,
            reframe: self.reframe,
        }
    }

    /// Sets the head and idle timeouts (see [`StreamTimeoutLayer::timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = self.timeout.timeout(timeout);
        self
    }

    /// Replaces the timeout layer: for a total deadline, a client header, keep-alives.
    pub fn timeout_layer(mut self, layer: StreamTimeoutLayer) -> Self {
        self.timeout = layer;
        self
    }

    /// The largest upstream event (see [`SseReframeLayer::max_event_size`]).
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.reframe = self.reframe.max_event_size(bytes);
        self
    }

    /// Replaces the render layer (see [`RenderLayer::default_api`]).
    pub fn render_layer(mut self, layer: RenderLayer) -> Self {
        self.render = layer;
        self
    }

    /// Replaces the fallback layer (see [`FallbackLayer::max_held`]).
    pub fn fallback_layer(mut self, layer: FallbackLayer) -> Self {
        self.fallback = layer;
        self
    }

    /// Replaces the error layer (see [`ErrorEventLayer::max_error_body`]).
    pub fn error_event_layer(mut self, layer: ErrorEventLayer) -> Self {
        self.error_event = layer;
        self
    }
}

impl<S, D: Clone, C: Clone> Layer<S> for LlmStreamLayer<D, C> {
    type Service = LlmStream<S, D, C>;

    fn layer(&self, inner: S) -> Self::Service {
        let layers = self
            .usage
            .layer(self.timeout.layer(self.reframe.layer(inner)));
        let fallback = self.fallback.layer(self.error_event.layer(layers));
        self.render.layer(self.observe.layer(fallback))
    }
}
