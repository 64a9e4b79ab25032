use super::record::Recorder;
use super::{ObserveBody, OnStreamEnd, Outcome};
use http::Response;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response future for [`Observe`](super::Observe).
    pub struct ResponseFuture<F, C: OnStreamEnd> {
        #[pin]
        inner: F,
        // Made with the request: a request dropped before its head is still summarized
        // (client_cancelled, no status).
        recorder: Option<Recorder<C>>,
    }
}

impl<F, C: OnStreamEnd> ResponseFuture<F, C> {
    pub(super) fn new(inner: F, recorder: Recorder<C>) -> Self {
        ResponseFuture {
            inner,
            recorder: Some(recorder),
        }
    }
}

impl<F, C, B, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: std::fmt::Display,
    C: OnStreamEnd,
{
    type Output = Result<Response<ObserveBody<B, C>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.recorder.as_ref().map(|r| r.span.enter());
            ready!(this.inner.poll(cx))
        };
        let mut recorder = this
            .recorder
            .take()
            .expect("ResponseFuture polled after completion");
        match result {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                // A handler that learns the provider and model late may label the response:
                // its labels replace the request's.
                recorder.head(&parts);
                let body = ObserveBody::new(body, &parts, recorder);
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(err) => {
                // No response at all: recorded (and the summary given) as the error leaves.
                tracing::warn!(parent: &recorder.span, error = %err, "the inner service failed");
                recorder.failed(Outcome::Error, "upstream_unavailable".to_owned());
                Poll::Ready(Err(err))
            }
        }
    }
}
