use super::ReframeBody;
use crate::dialect::Dialect;
use crate::dialect::Framing;
use crate::sse::{is_aws_event_stream, is_event_stream, is_ndjson};
use http::Response;
use http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue,
};
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
        let framing = match dialect.framing() {
            Framing::Ndjson if is_ndjson(&parts.headers) => Some(Framing::Ndjson),
            Framing::AwsEventStream if is_aws_event_stream(&parts.headers) => {
                Some(Framing::AwsEventStream)
            }
            _ if is_event_stream(&parts.headers) => Some(Framing::Sse),
            _ => None,
        };
        let body = match framing {
            Some(framing) => {
                parts.headers.remove(CONTENT_LENGTH);
                // The rewritten body is never encoded; an encoded one cannot be read here.
                let encoding = parts
                    .headers
                    .remove(CONTENT_ENCODING)
                    .filter(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"));
                parts
                    .headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                parts
                    .headers
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                parts
                    .headers
                    .insert(X_ACCEL_BUFFERING.clone(), HeaderValue::from_static("no"));
                let max = *this.max_event_size;
                let body = match framing {
                    Framing::Sse => ReframeBody::reframe(body, dialect, max),
                    Framing::Ndjson => ReframeBody::reframe_ndjson(body, dialect, max),
                    Framing::AwsEventStream => {
                        ReframeBody::reframe_aws_event_stream(body, dialect, max)
                    }
                };
                match encoding {
                    Some(encoding) => body.undecodable(&encoding),
                    None => body,
                }
            }
            None => ReframeBody::passthrough(body),
        };
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}
