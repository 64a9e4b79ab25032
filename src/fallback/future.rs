use super::FallbackBody;
use super::FallbackTargets;
use super::commit::{Verdict, failed_status, verdict};
use crate::labels::{FailedAttempt, FallbackAttempts, StreamLabels};
use bytes::{Buf, Bytes};
use http::{Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower_service::Service;

pin_project! {
    /// Response future for [`Fallback`](super::Fallback).
    pub struct ResponseFuture<F, S, ReqBody, ResBody: Body> {
        #[pin]
        future: F,
        // `None` for a request without fallback targets: the inner future as it is.
        plan: Option<Box<Plan<S, ReqBody, ResBody>>>,
    }
}

impl<F, S, ReqBody, ResBody: Body> ResponseFuture<F, S, ReqBody, ResBody> {
    pub(super) fn new(future: F, plan: Option<Box<Plan<S, ReqBody, ResBody>>>) -> Self {
        ResponseFuture { future, plan }
    }
}

/// The attempts of one request with fallback targets.
pub(super) struct Plan<S, ReqBody, ResBody: Body> {
    /// Makes the next targets' calls.
    service: S,
    targets: FallbackTargets<ReqBody>,
    /// The next target to try.
    next: usize,
    /// The current attempt's labels.
    labels: Option<StreamLabels>,
    /// Whether the current attempt is a fallback (not the request itself).
    fell_back: bool,
    /// The attempts that failed, in order.
    failed: Vec<FailedAttempt>,
    max_held: usize,
    phase: Phase<ReqBody, ResBody>,
}

enum Phase<ReqBody, ResBody: Body> {
    /// The current attempt's future is in flight.
    Calling,
    /// The service must be ready before the next target's request is sent.
    Readying(Option<Request<ReqBody>>),
    /// The head came; frames are read until the commit.
    Peeking {
        head: http::response::Parts,
        body: Pin<Box<ResBody>>,
        held: VecDeque<Frame<Bytes>>,
        /// An error the body gave before the commit (kept for the last target's answer).
        error: Option<ResBody::Error>,
        held_bytes: usize,
    },
}

impl<S, ReqBody, ResBody: Body> Plan<S, ReqBody, ResBody> {
    pub(super) fn new(
        service: S,
        targets: FallbackTargets<ReqBody>,
        labels: Option<StreamLabels>,
        max_held: usize,
    ) -> Self {
        Plan {
            service,
            targets,
            next: 0,
            labels,
            fell_back: false,
            failed: Vec::new(),
            max_held,
            phase: Phase::Calling,
        }
    }

    /// Whether a target is left to try (one that may yet refuse the request).
    fn has_next(&self) -> bool {
        self.next < self.targets.len()
    }

    /// The next target's request, and the targets skipped on the way because they cannot
    /// take the request (each says why). `None` when no target is left.
    fn next_target(&mut self) -> (Option<Request<ReqBody>>, Vec<FailedAttempt>) {
        let mut skipped = Vec::new();
        while let Some(made) = self.targets.make(self.next) {
            self.next += 1;
            match made {
                Ok(request) => return (Some(request), skipped),
                Err(attempt) => {
                    tracing::debug!(skipped = %attempt, "a fallback target cannot take this request");
                    skipped.push(attempt);
                }
            }
        }
        (None, skipped)
    }

    /// Falls back from the current attempt, which failed as `attempt` says, to `next`.
    fn fall_back(
        &mut self,
        attempt: FailedAttempt,
        skipped: Vec<FailedAttempt>,
        next: Request<ReqBody>,
    ) -> Phase<ReqBody, ResBody> {
        tracing::warn!(
            attempt = self.failed.len() + 1,
            failed = %attempt,
            "the stream failed before its first content event: falling back to the next target"
        );
        self.failed.push(attempt);
        self.failed.extend(skipped);
        self.labels = next.extensions().get::<StreamLabels>().cloned();
        self.fell_back = true;
        Phase::Readying(Some(next))
    }

    /// The response of the attempt that serves, with what the layers outside need to know.
    fn serve<B>(&mut self, mut response: Response<B>) -> Response<B> {
        let extensions = response.extensions_mut();
        if self.fell_back {
            if let Some(labels) = self.labels.take() {
                extensions.insert(labels);
            }
        }
        if !self.failed.is_empty() {
            extensions.insert(FallbackAttempts(std::mem::take(&mut self.failed)));
        }
        response
    }
}

/// A failed head's attempt record: its status, the error code its body shows at once (the
/// error layer's normalized JSON), its `Retry-After`.
fn failed_head(
    labels: Option<StreamLabels>,
    head: &http::response::Parts,
    code: Option<String>,
    reason: &'static str,
) -> FailedAttempt {
    let mut attempt = FailedAttempt::new(
        labels,
        code.map_or(std::borrow::Cow::Borrowed(reason), std::borrow::Cow::Owned),
    )
    .status(head.status);
    if let Some(retry_after) = head
        .headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
    {
        attempt = attempt.retry_after(retry_after.chars().take(64).collect::<String>());
    }
    attempt
}

/// The server is shutting down: no other target is tried, the stream ends as the error
/// says.
const SHUTTING_DOWN: &str = "server_shutting_down";

impl<F, S, ReqBody, ResBody, E> Future for ResponseFuture<F, S, ReqBody, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    S: Service<Request<ReqBody>, Future = F, Response = Response<ResBody>, Error = E>,
    E: std::fmt::Display,
    ResBody: Body<Data = Bytes>,
{
    type Output = Result<Response<FallbackBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(plan) = this.plan.as_mut() else {
            let response = ready!(this.future.poll(cx))?;
            return Poll::Ready(Ok(response.map(FallbackBody::direct)));
        };
        loop {
            match &mut plan.phase {
                Phase::Readying(request) => {
                    // A service that failed to get ready stays failed (tower's contract): no
                    // other target can be tried on it.
                    ready!(plan.service.poll_ready(cx))?;
                    let request = request.take().expect("a request to send");
                    this.future.set(plan.service.call(request));
                    plan.phase = Phase::Calling;
                }
                Phase::Calling => {
                    let response = match ready!(this.future.as_mut().poll(cx)) {
                        Ok(response) => response,
                        Err(e) => {
                            tracing::debug!(error = %e, "a target's service failed without a response");
                            let (next, skipped) = plan.next_target();
                            let Some(next) = next else {
                                plan.failed.extend(skipped);
                                return Poll::Ready(Err(e));
                            };
                            let attempt =
                                FailedAttempt::new(plan.labels.take(), "upstream_unavailable");
                            plan.phase = plan.fall_back(attempt, skipped, next);
                            continue;
                        }
                    };
                    let status = response.status();
                    if let Some(reason) = failed_status(status) {
                        // One poll of the body, never a wait: its error code when it is there.
                        let (head, body) = response.into_parts();
                        let mut body = Box::pin(body);
                        let first = match body.as_mut().poll_frame(cx) {
                            Poll::Ready(first) => Some(first),
                            Poll::Pending => None,
                        };
                        let code = match &first {
                            Some(Some(Ok(frame))) => frame
                                .data_ref()
                                .and_then(|data| crate::standard::frame::error_code(data.chunk())),
                            _ => None,
                        };
                        let (next, skipped) = if code.as_deref() == Some(SHUTTING_DOWN) {
                            (None, Vec::new())
                        } else {
                            plan.next_target()
                        };
                        if let Some(next) = next {
                            // Dropped here, unread: and its upstream with it.
                            drop(body);
                            let attempt = failed_head(plan.labels.take(), &head, code, reason);
                            plan.phase = plan.fall_back(attempt, skipped, next);
                            continue;
                        }
                        // The last target's failure is the answer, as the layers inside made it.
                        plan.failed.extend(skipped);
                        let (mut held, mut error, mut inner) = (VecDeque::new(), None, Some(body));
                        match first {
                            Some(Some(Ok(frame))) => held.push_back(frame),
                            Some(Some(Err(e))) => error = Some(e),
                            Some(None) => inner = None,
                            None => {}
                        }
                        let response =
                            Response::from_parts(head, FallbackBody::held(held, error, inner));
                        return Poll::Ready(Ok(plan.serve(response)));
                    }
                    let peek = status == StatusCode::OK
                        && crate::sse::is_event_stream(response.headers())
                        && plan.has_next();
                    if !peek {
                        return Poll::Ready(Ok(plan.serve(response).map(FallbackBody::direct)));
                    }
                    let (head, body) = response.into_parts();
                    plan.phase = Phase::Peeking {
                        head,
                        body: Box::pin(body),
                        held: VecDeque::new(),
                        error: None,
                        held_bytes: 0,
                    };
                }
                Phase::Peeking {
                    body,
                    held,
                    error,
                    held_bytes,
                    ..
                } => {
                    let mut ended = false;
                    let failure = match ready!(body.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) => {
                            let verdict = match frame.data_ref() {
                                Some(data) => verdict(data),
                                None => Verdict::Commit,
                            };
                            if verdict == Verdict::Skip {
                                continue;
                            }
                            *held_bytes += frame.data_ref().map_or(0, Bytes::len);
                            held.push_back(frame);
                            match verdict {
                                Verdict::Skip => continue,
                                Verdict::Hold if *held_bytes <= plan.max_held => continue,
                                Verdict::Hold | Verdict::Commit => None,
                                Verdict::Fail(code) if code == SHUTTING_DOWN => None,
                                Verdict::Fail(code) => Some(code),
                            }
                        }
                        Some(Err(e)) => {
                            *error = Some(e);
                            ended = true;
                            Some("upstream_body_error".to_owned())
                        }
                        None => {
                            ended = true;
                            Some("stream_truncated".to_owned())
                        }
                    };
                    if let Some(code) = failure {
                        let (next, skipped) = plan.next_target();
                        if let Some(next) = next {
                            // The attempt's body is dropped here, and its upstream request
                            // with it.
                            let attempt = FailedAttempt::new(plan.labels.take(), code);
                            plan.phase = plan.fall_back(attempt, skipped, next);
                            continue;
                        }
                        plan.failed.extend(skipped);
                    }
                    let Phase::Peeking {
                        head,
                        body,
                        held,
                        error,
                        ..
                    } = std::mem::replace(&mut plan.phase, Phase::Calling)
                    else {
                        unreachable!("the attempt is being read");
                    };
                    let body = FallbackBody::held(held, error, (!ended).then_some(body));
                    let response = Response::from_parts(head, body);
                    return Poll::Ready(Ok(plan.serve(response)));
                }
            }
        }
    }
}
