use super::ErrorEventBody;
use crate::body_util::json_error_response;
use crate::error::BoxError;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response future for [`ErrorEvent`](super::ErrorEvent).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        max_error_body: usize,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, max_error_body: usize) -> Self {
        ResponseFuture {
            inner,
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
        let response = match ready!(this.inner.poll(cx)) {
            Ok(response) => response,
            Err(err) => {
                let err: BoxError = err.into();
                let message = format!("the upstream could not be reached: {err}");
                tracing::warn!(error.r#type = "upstream_error", error.code = "upstream_unavailable", %message, "stream error");
                let response = json_error_response(
                    StatusCode::BAD_GATEWAY,
                    "upstream_error",
                    "upstream_unavailable",
                    &message,
                );
                return Poll::Ready(Ok(response.map(ErrorEventBody::full)));
            }
        };
        let (mut parts, body) = response.into_parts();
        let body = if parts.status.is_client_error() || parts.status.is_server_error() {
            parts.headers.remove(CONTENT_LENGTH);
            parts
                .headers
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            // A compressed error body is not read: the error keeps only its status.
            let encoded = parts
                .headers
                .remove(CONTENT_ENCODING)
                .is_some_and(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"));
            let limit = if encoded { 0 } else { *this.max_error_body };
            ErrorEventBody::normalize(body, parts.status, limit)
        } else if crate::sse::is_event_stream(&parts.headers) {
            ErrorEventBody::stream(body)
        } else {
            ErrorEventBody::passthrough(body)
        };
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}
