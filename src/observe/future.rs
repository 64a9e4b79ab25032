use super::record::{ClientStall, Recorder, StreamLabels, record_labels};
use super::{ObserveBody, OnStreamEnd, Outcome};
use http::Response;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::time::Instant;
use tracing::Span;

pin_project! {
    /// Response future for [`Observe`](super::Observe).
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: F,
        start: Option<(Span, Option<StreamLabels>, Option<ClientStall>, C)>,
        started: Instant,
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn new(
        inner: F,
        span: Span,
        labels: Option<StreamLabels>,
        stall: Option<ClientStall>,
        on_end: C,
    ) -> Self {
        ResponseFuture {
            inner,
            start: Some((span, labels, stall, on_end)),
            started: Instant::now(),
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
            let _entered = this.start.as_ref().map(|(span, ..)| span.enter());
            ready!(this.inner.poll(cx))
        };
        let (span, labels, stall, on_end) = this
            .start
            .take()
            .expect("ResponseFuture polled after completion");
        match result {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                // A handler that learns the provider and model late may label the response.
                // The span has the request's labels; a response's own replace them.
                let labels = match parts.extensions.get::<StreamLabels>() {
                    Some(late) => {
                        record_labels(&span, late);
                        Some(late.clone())
                    }
                    None => labels,
                };
                let mut recorder =
                    Recorder::new(span, labels, *this.started, Some(parts.status), on_end);
                recorder.stall = stall;
                let body = ObserveBody::new(body, &parts, recorder);
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(err) => {
                // No response at all: recorded (and the summary given) as the error leaves.
                let mut recorder = Recorder::new(span, labels, *this.started, None, on_end);
                tracing::warn!(parent: &recorder.span, error = %err, "the inner service failed");
                recorder.failed(Outcome::Error, "upstream_unavailable".to_owned());
                Poll::Ready(Err(err))
            }
        }
    }
}
