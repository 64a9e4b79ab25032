use super::UsageBody;
use http::Response;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response future for [`UsageLastChunk`](super::UsageLastChunk).
    pub struct ResponseFuture<F> {
        #[pin]
        pub(crate) inner: F,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<UsageBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = ready!(self.project().inner.poll(cx))?;
        let streaming =
            response.status().is_success() && crate::sse::is_event_stream(response.headers());
        Poll::Ready(Ok(response.map(|body| UsageBody::new(body, streaming))))
    }
}
