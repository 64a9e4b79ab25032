use super::{RedactBody, Secrets};
use http::Response;
use http::header::CONTENT_LENGTH;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response future for [`Redact`](super::Redact): the inner future's response with its
    /// body wrapped in a [`RedactBody`] and, when there are secrets, no `content-length`.
    ///
    /// ```
    /// use tower::{Service, ServiceExt};
    /// use tower_llm_stream::redact::{Redact, ResponseFuture, Secrets};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let upstream = tower::service_fn(|_req: http::Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
    /// });
    /// let mut service = Redact::new(upstream, Secrets::new(["sk-abcdefgh"]));
    /// let future: ResponseFuture<_> = service.ready().await.unwrap().call(http::Request::new(()));
    /// let response = future.await.unwrap();
    /// assert!(response.headers().get("content-length").is_none());
    /// # }
    /// ```
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        secrets: Secrets,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, secrets: Secrets) -> Self {
        ResponseFuture { inner, secrets }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<RedactBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (mut parts, body) = ready!(this.inner.poll(cx))?.into_parts();
        if !this.secrets.is_empty() {
            // A replacement changes the body's length.
            parts.headers.remove(CONTENT_LENGTH);
        }
        let body = RedactBody::new(body, this.secrets);
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}
