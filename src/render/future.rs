use super::{ClientApi, RenderBody};
use http::Response;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response future for [`Render`](super::Render).
    pub struct ResponseFuture<F> {
        #[pin]
        pub(crate) inner: F,
        pub(crate) api: ClientApi,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<RenderBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let api = *this.api;
        let mut response = ready!(this.inner.poll(cx))?;
        let status = response.status();
        if api == ClientApi::ChatCompletions {
            return Poll::Ready(Ok(response.map(RenderBody::pass)));
        }
        if status.is_success() && crate::sse::is_event_stream(response.headers()) {
            response.headers_mut().remove(CONTENT_LENGTH);
            return Poll::Ready(Ok(response.map(|body| RenderBody::stream(body, api))));
        }
        let json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if (status.is_client_error() || status.is_server_error()) && json {
            if matches!(api, ClientApi::AnthropicMessages | ClientApi::Gemini) {
                response.headers_mut().remove(CONTENT_LENGTH);
            }
            let code = status.as_u16();
            return Poll::Ready(Ok(response.map(|body| RenderBody::error(body, api, code))));
        }
        Poll::Ready(Ok(response.map(RenderBody::pass)))
    }
}
