use super::ErrorEventBody;
use super::stats::{StreamLabels, StreamStats};
use crate::body_util::json_error_response;
use crate::error::BoxError;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::time::Instant;
use tracing::Span;

pin_project! {
    /// Response future for [`ErrorEvent`](super::ErrorEvent).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Option<Span>,
        started: Instant,
        max_error_body: usize,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: Span, max_error_body: usize) -> Self {
        ResponseFuture {
            inner,
            span: Some(span),
            started: Instant::now(),
            max_error_body,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ErrorEventBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.span.as_ref().map(Span::enter);
            ready!(this.inner.poll(cx))
        };
        let span = this
            .span
            .take()
            .expect("ResponseFuture polled after completion");
        let response = match result {
            Ok(response) => response,
            Err(err) => {
                let err: BoxError = err.into();
                let message = format!("the upstream could not be reached: {err}");
                tracing::warn!(parent: &span, error.r#type = "upstream_error", error.code = "upstream_unavailable", %message, "stream error");
                let response = json_error_response(
                    StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    "upstream_unavailable",
                    &message,
                );
                let mut stats = StreamStats::new(span, *this.started, response.status());
                stats.failed("http_error", "upstream_unavailable".to_owned());
                return Poll::Ready(Ok(response.map(|body| ErrorEventBody::full(body, stats))));
            }
        };
        let (mut parts, body) = response.into_parts();
        // A handler that learns the provider and model late may label the response instead.
        if let Some(labels) = parts.extensions.get::<StreamLabels>() {
            span.record("gen_ai.system", &*labels.system);
            span.record("gen_ai.request.model", &*labels.model);
        }
        let stats = StreamStats::new(span, *this.started, parts.status);
        let body = if parts.status.is_client_error() || parts.status.is_server_error() {
            parts.headers.remove(CONTENT_LENGTH);
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            ErrorEventBody::normalize(body, parts.status, *this.max_error_body, stats)
        } else if crate::sse::is_event_stream(&parts.headers) {
            ErrorEventBody::stream(body, stats)
        } else {
            ErrorEventBody::passthrough(body, stats)
        };
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}
