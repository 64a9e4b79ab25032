use super::{ReframeBody, is_event_stream, is_ndjson};
use crate::dialect::Dialect;
use http::Response;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

static X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

pin_project! {
    /// Response future for [`SseReframe`](super::SseReframe).
    pub struct ResponseFuture<F, D> {
        #[pin]
        inner: F,
        dialect: Option<D>,
        max_event_size: usize,
    }
}

impl<F, D> ResponseFuture<F, D> {
    pub(crate) fn new(inner: F, dialect: D, max_event_size: usize) -> Self {
        ResponseFuture {
            inner,
            dialect: Some(dialect),
            max_event_size,
        }
    }
}

impl<F, D, B, E> Future for ResponseFuture<F, D>
where
    F: Future<Output = Result<Response<B>, E>>,
    D: Dialect + Clone + Sync,
{
    type Output = Result<Response<ReframeBody<B, D>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let (mut parts, body) = response.into_parts();
        let dialect = this
            .dialect
            .take()
            .expect("ResponseFuture polled after completion");
        // A handler that knows the provider may name the dialect on its response.
        let dialect = parts.extensions.remove::<D>().unwrap_or(dialect);
        let ndjson = dialect.ndjson() && is_ndjson(&parts.headers);
        if ndjson {
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        }
        let body = if ndjson || is_event_stream(&parts.headers) {
            parts.headers.remove(CONTENT_LENGTH);
            parts
                .headers
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            parts
                .headers
                .insert(X_ACCEL_BUFFERING.clone(), HeaderValue::from_static("no"));
            if ndjson {
                ReframeBody::reframe_ndjson(body, dialect, *this.max_event_size)
            } else {
                ReframeBody::reframe(body, dialect, *this.max_event_size)
            }
        } else {
            ReframeBody::passthrough(body)
        };
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}
