use super::{StreamTimeouts, TimeoutBody};
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
    ) -> Self {
        let started = Instant::now();
        ResponseFuture {
            kind: Kind::Waiting {
                inner,
                head: timeouts
                    .head
                    .map(|head| tokio::time::sleep_until(started + head)),
                timeouts,
                keep_alive,
                started,
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
            } => {
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
                    return Poll::Ready(Ok(response
                        .map(|body| TimeoutBody::streaming(body, timeouts, keep_alive, started))));
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
