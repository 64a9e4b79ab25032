use super::{ReframeBody, is_event_stream};
use crate::dialect::Dialect;
use http::Response;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, HeaderName, HeaderValue};
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
    D: Dialect,
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
        let body = if is_event_stream(&parts.headers) {
            parts.headers.remove(CONTENT_LENGTH);
            parts
                .headers
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            parts
                .headers
                .insert(X_ACCEL_BUFFERING.clone(), HeaderValue::from_static("no"));
            ReframeBody::reframe(body, dialect, *this.max_event_size)
        } else {
            ReframeBody::passthrough(body)
        };
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}
