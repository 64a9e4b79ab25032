use super::{Shutdown, StreamTimeouts, TimeoutBody};
use crate::body_util::json_error_response;
use crate::sse::is_event_stream;
use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{Instant, Sleep};

pin_project! {
    /// Response future for [`StreamTimeout`](super::StreamTimeout).
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Waiting {
            #[pin]
            inner: F,
            #[pin]
            head: Option<Sleep>,
            timeouts: StreamTimeouts,
            keep_alive: Option<Duration>,
            started: Instant,
            shutdown: Option<Shutdown>,
            // Resolves when `shutdown` is triggered.
            #[pin]
            shut: Option<OwnedNotified>,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn waiting(
        inner: F,
        timeouts: StreamTimeouts,
        keep_alive: Option<Duration>,
        shutdown: Option<Shutdown>,
    ) -> Self {
        let started = Instant::now();
        let shut = shutdown.as_ref().and_then(Shutdown::watch);
        ResponseFuture {
            kind: Kind::Waiting {
                inner,
                head: timeouts
                    .head
                    .map(|head| tokio::time::sleep_until(started + head)),
                timeouts,
                keep_alive,
                started,
                shutdown,
                shut,
            },
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        ResponseFuture {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TimeoutBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Rejected { response } => {
                let response = response
                    .take()
                    .expect("ResponseFuture polled after completion");
                Poll::Ready(Ok(response.map(TimeoutBody::full)))
            }
            KindProj::Waiting {
                inner,
                head,
                timeouts,
                keep_alive,
                started,
                shutdown,
                shut,
            } => {
                if shutdown.as_ref().is_some_and(Shutdown::is_triggered) && shut.is_none() {
                    return Poll::Ready(Ok(shutting_down()));
                }
                if let Poll::Ready(result) = inner.poll(cx) {
                    let mut response = result?;
                    let (mut timeouts, mut keep_alive, started) =
                        (*timeouts, *keep_alive, *started);
                    // The idle timer and keep-alives are about events: a JSON or audio body
                    // that is slow between its chunks is left alone (only the total deadline
                    // applies), and keep-alive comments never enter it.
                    if is_event_stream(response.headers()) {
                        if keep_alive.is_some() {
                            // Keep-alive comments add bytes: the inner length no longer holds.
                            response.headers_mut().remove(CONTENT_LENGTH);
                        }
                    } else {
                        timeouts.idle = None;
                        keep_alive = None;
                    }
                    let shutdown = shutdown.take();
                    return Poll::Ready(Ok(response.map(|body| {
                        TimeoutBody::streaming(body, timeouts, keep_alive, started, shutdown)
                    })));
                }
                if let Some(shut) = shut.as_pin_mut() {
                    if shut.poll(cx).is_ready() {
                        return Poll::Ready(Ok(shutting_down()));
                    }
                }
                if let Some(head) = head.as_pin_mut() {
                    if head.poll(cx).is_ready() {
                        let limit = timeouts.head.unwrap_or_default();
                        let message = format!(
                            "the upstream sent no response head within {}",
                            crate::error::seconds(limit)
                        );
                        tracing::warn!(code = "upstream_timeout", %message, "stream error");
                        let response = json_error_response(
                            StatusCode::GATEWAY_TIMEOUT,
                            "timeout_error",
                            "upstream_timeout",
                            &message,
                        );
                        return Poll::Ready(Ok(response.map(TimeoutBody::full)));
                    }
                }
                Poll::Pending
            }
        }
    }
}

/// The `503` for a request still waiting for its head when the server shuts down.
fn shutting_down<B>() -> Response<TimeoutBody<B>> {
    let err = crate::StreamError::ShuttingDown;
    tracing::warn!(code = err.code(), "stream error");
    json_error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        err.error_type(),
        err.code(),
        &err.to_string(),
    )
    .map(TimeoutBody::full)
}
