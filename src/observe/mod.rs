//! One summary per stream, for the application and for `tracing`.
//!
//! [`ObserveLayer`] watches the response body on its way to the client and, once per stream
//! (when it ends, fails or is dropped), builds a [`StreamSummary`]: provider and model, HTTP
//! status, usage, finish reasons, time to first event, events, bytes, duration, outcome and
//! error code. Applications meter and bill from it through
//! [`ObserveLayer::on_stream_end`]; the `llm_stream` span is one consumer of it (its fields
//! are recorded once, and an `INFO` event "stream ended" carries them).
//!
//! Place it outermost (as [`LlmStreamLayer`](crate::LlmStreamLayer) does), outside
//! [`ErrorEventLayer`](crate::ErrorEventLayer), so that it sees what the client sees: the
//! error events and the normalized error bodies. It reads only the frames that carry the
//! outcome (the last chunk, a Responses terminal event, an error event): one probe per event,
//! nothing copied. The span is entered while the inner service is called and the response
//! head awaited, not for each body frame (that cost more than the rest of the layer): the
//! other layers' `tracing` events during the body are not inside it, and the "stream ended"
//! event carries the outcome and the error code.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use std::sync::{Arc, Mutex};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_llm_stream::observe::{ObserveLayer, Outcome, StreamLabels, StreamSummary};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let upstream = tower::service_fn(|_req: Request<()>| async {
//!     let body = concat!(
//!         "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",",
//!         "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],",
//!         "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n",
//!         "data: [DONE]\n\n",
//!     );
//!     Ok::<_, std::convert::Infallible>(
//!         Response::builder().header("content-type", "text/event-stream").body(Full::new(Bytes::from(body))).unwrap(),
//!     )
//! });
//! let seen: Arc<Mutex<Vec<StreamSummary>>> = Arc::default();
//! let meter = seen.clone();
//! let service = ServiceBuilder::new()
//!     .layer(ObserveLayer::new().on_stream_end(move |summary: &StreamSummary| {
//!         meter.lock().unwrap().push(summary.clone());
//!     }))
//!     .service(upstream);
//!
//! let mut request = Request::new(());
//! request.extensions_mut().insert(StreamLabels::new("openai", "gpt-4o-mini"));
//! let body = service.oneshot(request).await.unwrap().into_body();
//! body.collect().await.unwrap();
//!
//! let summary = seen.lock().unwrap()[0].clone();
//! assert_eq!(summary.outcome, Outcome::Completed);
//! assert_eq!(summary.model.as_deref(), Some("gpt-4o-mini"));
//! assert_eq!((summary.usage.input_tokens, summary.usage.output_tokens), (Some(3), Some(1)));
//! assert_eq!(summary.finish_reasons, ["stop"]);
//! # }
//! ```

mod body;
mod future;
mod layer;
mod record;
mod service;

pub use self::body::ObserveBody;
pub use self::future::ResponseFuture;
pub use self::layer::ObserveLayer;
pub use self::record::ClientStall;
pub use self::service::Observe;
pub use crate::labels::{FailedAttempt, StreamLabels};
pub use crate::standard::report::TokenUsage;

use http::StatusCode;
use std::borrow::Cow;
use std::time::Duration;

/// What one stream did, given to [`OnStreamEnd`] once, when it ends or is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamSummary {
    /// The provider, from a [`StreamLabels`] extension.
    pub provider: Option<Cow<'static, str>>,
    /// The requested model, from a [`StreamLabels`] extension.
    pub model: Option<Cow<'static, str>>,
    /// Who the stream was for ([`StreamLabels::client`]).
    pub client: Option<Cow<'static, str>>,
    /// The targets that failed before the one that served, when a
    /// [`FallbackLayer`](crate::fallback::FallbackLayer) inside fell back (else empty).
    pub fallbacks: Vec<FailedAttempt>,
    /// The response status; `None` when the inner service failed without a response.
    pub status: Option<StatusCode>,
    /// Token usage as the upstream reported it (never invented).
    pub usage: TokenUsage,
    /// The finish reasons of the last chunk, or a Responses stream's final status.
    pub finish_reasons: Vec<String>,
    /// From the request to the first event.
    pub time_to_first_event: Option<Duration>,
    /// Events sent (comments not counted).
    pub events: u64,
    /// Body bytes sent.
    pub bytes: u64,
    /// From the request to the end of the stream.
    pub duration: Duration,
    /// How the stream ended.
    pub outcome: Outcome,
    /// The error code, when it ended with an error.
    pub error_code: Option<String>,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The body ended normally.
    Completed,
    /// An error event or a body error.
    Error,
    /// A timeout error event (`stream_idle_timeout`, `stream_deadline`) or a `504`.
    Timeout,
    /// An HTTP error response (`4xx`, `5xx`).
    HttpError,
    /// The body was dropped before its end: the client went away.
    ClientCancelled,
    /// The body was dropped before its end because the server dropped a client that read
    /// nothing for too long ([`ClientStall`]).
    ClientStalled,
}

impl Outcome {
    /// The name recorded in the span: `completed`, `error`, `timeout`, `http_error`,
    /// `client_cancelled`, `client_stalled`.
    ///
    /// ```
    /// assert_eq!(tower_llm_stream::observe::Outcome::ClientCancelled.as_str(), "client_cancelled");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::HttpError => "http_error",
            Outcome::ClientCancelled => "client_cancelled",
            Outcome::ClientStalled => "client_stalled",
        }
    }
}

/// What the application does with each [`StreamSummary`]: meter, bill, export metrics.
/// Implemented for `()` (nothing) and for closures `Fn(&StreamSummary)`.
///
/// Every stream that starts ends: [`on_stream_start`](Self::on_stream_start) is called when
/// the request reaches the layer, and [`on_stream_end`](Self::on_stream_end) exactly once
/// after it, also when the request is dropped before its response head (then with the
/// outcome [`Outcome::ClientCancelled`] and no status).
pub trait OnStreamEnd: Clone + Send + 'static {
    /// Called once per stream, after the span has been recorded.
    fn on_stream_end(&self, summary: &StreamSummary);

    /// Called once per stream, when the request reaches the layer (a gauge of open streams
    /// counts here). Nothing by default.
    fn on_stream_start(&self, labels: Option<&StreamLabels>) {
        let _ = labels;
    }
}

impl OnStreamEnd for () {
    fn on_stream_end(&self, _summary: &StreamSummary) {}
}

impl<F> OnStreamEnd for F
where
    F: Fn(&StreamSummary) + Clone + Send + 'static,
{
    fn on_stream_end(&self, summary: &StreamSummary) {
        self(summary);
    }
}
