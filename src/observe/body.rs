use super::record::Recorder;
use super::{OnStreamEnd, Outcome};
use crate::body_util::to_bytes;
use crate::error::{BoxError, describe, find_stream_error};
use crate::standard::frame::{
    error_code, error_event_code, is_comment_only, is_error_event, is_responses_terminal,
};
use crate::standard::probe::{Found, Needle, Needles, Value};
use bytes::{BufMut, Bytes, BytesMut};
use http::response::Parts;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};

/// How much of an error response body is kept to read its error code.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

pin_project! {
    /// Response body for [`Observe`](super::Observe): the inner body, watched.
    pub struct ObserveBody<B, C: OnStreamEnd> {
        #[pin]
        inner: B,
        recorder: Recorder<C>,
        kind: Kind,
    }
}

enum Kind {
    /// An event stream: counts events, reads the frames that carry the outcome.
    Events {
        // A finish reason has been seen: later frames may carry the usage.
        finished: bool,
    },
    /// An error response: its body is kept (up to a limit) for its error code.
    Error { collected: BytesMut },
    /// Anything else: bytes only.
    Other,
}

impl<B, C: OnStreamEnd> ObserveBody<B, C> {
    pub(super) fn new(inner: B, parts: &Parts, recorder: Recorder<C>) -> Self {
        let kind = if parts.status.is_client_error() || parts.status.is_server_error() {
            Kind::Error {
                collected: BytesMut::new(),
            }
        } else if crate::sse::is_event_stream(&parts.headers) {
            Kind::Events { finished: false }
        } else {
            Kind::Other
        };
        ObserveBody {
            inner,
            recorder,
            kind,
        }
    }
}

/// Whether a chat frame may carry the outcome: a `finish_reason` string, or (once one was
/// seen) a `usage` object, however the JSON is written. One probe per event;
/// [`Found::Escape`]: maybe (a key may be hidden in an escape), for the parse to tell.
fn carries_outcome(frame: &[u8], finish_seen: bool) -> Option<Found> {
    static FINISH: OnceLock<Needles> = OnceLock::new();
    static USAGE: OnceLock<Needles> = OnceLock::new();
    if finish_seen {
        USAGE
            .get_or_init(|| Needles::new(&[Needle::Key(b"\"usage\"", Value::Starts(b'{'))]))
            .find(frame)
    } else {
        FINISH
            .get_or_init(|| Needles::new(&[Needle::Key(b"\"finish_reason\"", Value::Starts(b'"'))]))
            .find(frame)
    }
}

/// Whether an error code is one of the timeouts.
fn is_timeout_code(code: &str) -> bool {
    matches!(
        code,
        "stream_idle_timeout" | "stream_deadline" | "upstream_timeout"
    )
}

impl<B, C: OnStreamEnd> ObserveBody<B, C> {
    fn finish(recorder: &mut Recorder<C>, kind: &mut Kind) {
        if recorder.has_ended() {
            return;
        }
        match kind {
            Kind::Error { collected } => {
                let code = error_code(collected).unwrap_or_else(|| "http_error".to_owned());
                recorder.failed(Outcome::HttpError, code);
            }
            Kind::Events { .. } | Kind::Other => recorder.completed(),
        }
    }
}

impl<B, C> Body for ObserveBody<B, C>
where
    B: Body,
    B::Error: Into<BoxError>,
    C: OnStreamEnd,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let recorder = this.recorder;
        // The span is not entered around this poll: entering and leaving it for every frame
        // cost 8,000 instructions per 23-event request (BENCHMARKS.md). Its "stream ended"
        // event carries the outcome and the error code instead.
        match ready!(this.inner.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => {
                let frame = frame.map_data(to_bytes);
                if let Some(data) = frame.data_ref() {
                    match this.kind {
                        Kind::Events { finished } => {
                            let is_event = !data.is_empty() && !is_comment_only(data);
                            recorder.frame(data.len(), is_event);
                            if is_event {
                                if is_error_event(data) {
                                    let code = error_event_code(data);
                                    let outcome = if is_timeout_code(&code) {
                                        Outcome::Timeout
                                    } else {
                                        Outcome::Error
                                    };
                                    recorder.failed(outcome, code);
                                } else if is_responses_terminal(data) {
                                    *finished = true;
                                    recorder.outcome_frame(data);
                                } else if let Some(found) = carries_outcome(data, *finished) {
                                    // An escape is only a maybe: what it holds is read, but
                                    // it does not say that a finish reason was seen.
                                    *finished |= found != Found::Escape;
                                    recorder.outcome_frame(data);
                                }
                            }
                        }
                        Kind::Error { collected } => {
                            recorder.frame(data.len(), false);
                            let room = ERROR_BODY_LIMIT.saturating_sub(collected.len());
                            collected.put_slice(&data[..data.len().min(room)]);
                        }
                        Kind::Other => recorder.frame(data.len(), false),
                    }
                }
                // hyper stops at the body's end (or its content-length) without polling for
                // `None`: that is an ended body too.
                if this.inner.is_end_stream() {
                    Self::finish(recorder, this.kind);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => {
                let err: BoxError = err.into();
                let (_, code, _) = describe(&*err);
                let timeout = find_stream_error(&*err).is_some_and(|e| e.is_timeout());
                recorder.failed(
                    if timeout {
                        Outcome::Timeout
                    } else {
                        Outcome::Error
                    },
                    code,
                );
                Poll::Ready(Some(Err(err)))
            }
            None => {
                Self::finish(recorder, this.kind);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B, C: OnStreamEnd> std::fmt::Debug for ObserveBody<B, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserveBody").finish_non_exhaustive()
    }
}
