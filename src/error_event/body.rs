use super::render::normalize_error_body;
use super::stats::StreamStats;
use crate::body_util::to_bytes;
use crate::error::{BoxError, describe, find_stream_error};
use crate::standard::frame::{
    error_event_code, is_comment_only, is_error_event, is_responses_event, is_responses_terminal,
    sequence_number,
};
use crate::standard::probe::Needles;
use crate::standard::{error_frame, responses_error_frame};
use bytes::{BufMut, Bytes, BytesMut};
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response body for [`ErrorEvent`](super::ErrorEvent).
    pub struct ErrorEventBody<B> {
        #[pin]
        kind: Kind<B>,
        stats: StreamStats,
        done: bool,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        // An event stream: errors become an error event.
        Stream {
            #[pin]
            inner: B,
            responses: ResponsesTracker,
            // After an upstream error event in a Responses stream: only `response.failed`,
            // the terminal event OpenAI sends after `error`, may still follow.
            closing: bool,
            // A finish reason has been seen: later frames may carry the usage.
            finished: bool,
        },
        // An upstream error response: read (up to a limit) and normalized.
        Normalize {
            #[pin]
            inner: B,
            status: StatusCode,
            collected: BytesMut,
            limit: usize,
        },
        // Anything else, untouched.
        Passthrough {
            #[pin]
            inner: B,
        },
        // A body made here.
        Full {
            data: Option<Bytes>,
        },
    }
}

/// Knows whether the stream is a Responses API stream and its last `sequence_number`.
#[derive(Default)]
struct ResponsesTracker {
    mode: Mode,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Mode {
    #[default]
    Unknown,
    Plain,
    Responses {
        next_sequence: u64,
    },
}

impl ResponsesTracker {
    fn observe(&mut self, frame: &[u8]) {
        if self.mode == Mode::Unknown {
            self.mode = if is_responses_event(frame) {
                Mode::Responses { next_sequence: 0 }
            } else {
                Mode::Plain
            };
        }
        if let Mode::Responses { next_sequence } = &mut self.mode {
            if let Some(seq) = sequence_number(frame) {
                *next_sequence = seq.saturating_add(1);
            }
        }
    }

    fn is_responses(&self) -> bool {
        matches!(self.mode, Mode::Responses { .. })
    }

    fn render(&self, error_type: &str, code: &str, message: &str) -> Bytes {
        match self.mode {
            Mode::Responses { next_sequence } => {
                responses_error_frame(next_sequence, error_type, code, message)
            }
            _ => error_frame(error_type, code, message),
        }
    }
}

/// Whether a chat frame may carry the outcome: a `finish_reason` string, or (once one was
/// seen) a `usage` object. One probe per event.
fn carries_outcome(frame: &[u8], finish_seen: bool) -> bool {
    static FINISH: std::sync::OnceLock<Needles> = std::sync::OnceLock::new();
    static USAGE: std::sync::OnceLock<Needles> = std::sync::OnceLock::new();
    if finish_seen {
        USAGE
            .get_or_init(|| Needles::new(&[b"\"usage\":{"]))
            .any_in(frame)
    } else {
        FINISH
            .get_or_init(|| Needles::new(&[b"\"finish_reason\":\""]))
            .any_in(frame)
    }
}

impl<B> ErrorEventBody<B> {
    pub(crate) fn stream(inner: B, stats: StreamStats) -> Self {
        Self::new(
            Kind::Stream {
                inner,
                responses: ResponsesTracker::default(),
                closing: false,
                finished: false,
            },
            stats,
        )
    }

    pub(crate) fn normalize(
        inner: B,
        status: StatusCode,
        limit: usize,
        stats: StreamStats,
    ) -> Self {
        Self::new(
            Kind::Normalize {
                inner,
                status,
                collected: BytesMut::new(),
                limit,
            },
            stats,
        )
    }

    pub(crate) fn passthrough(inner: B, stats: StreamStats) -> Self {
        Self::new(Kind::Passthrough { inner }, stats)
    }

    pub(crate) fn full(data: Bytes, stats: StreamStats) -> Self {
        Self::new(Kind::Full { data: Some(data) }, stats)
    }

    fn new(kind: Kind<B>, stats: StreamStats) -> Self {
        ErrorEventBody {
            kind,
            stats,
            done: false,
        }
    }
}

impl<B> Body for ErrorEventBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let stats = this.stats;
        if *this.done {
            return Poll::Ready(None);
        }
        match this.kind.project() {
            KindProj::Full { data } => {
                let frame = data.take();
                if frame.is_none() {
                    *this.done = true;
                }
                Poll::Ready(frame.map(|d| Ok(Frame::data(d))))
            }
            KindProj::Passthrough { mut inner } => match ready!(inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let frame = frame.map_data(to_bytes);
                    if let Some(data) = frame.data_ref() {
                        stats.frame(data.len(), false);
                    }
                    // hyper stops at the body's end (or its content-length) without polling
                    // for `None`: that is a completed response too.
                    if inner.is_end_stream() {
                        stats.completed();
                        *this.done = true;
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Some(Err(err)) => {
                    let err: BoxError = err.into();
                    let (error_type, code, message) = describe(&*err);
                    tracing::warn!(parent: &stats.span, error.r#type = %error_type, error.code = %code, %message, "stream error");
                    stats.failed("error", code);
                    *this.done = true;
                    Poll::Ready(Some(Err(err)))
                }
                None => {
                    stats.completed();
                    *this.done = true;
                    Poll::Ready(None)
                }
            },
            KindProj::Stream {
                inner,
                responses,
                closing,
                finished,
            } => match ready!(inner.poll_frame(cx)) {
                Some(Ok(frame)) if *closing => {
                    *this.done = true;
                    let frame = frame.map_data(to_bytes);
                    let failed = frame
                        .data_ref()
                        .is_some_and(|d| d.starts_with(b"event: response.failed\n"));
                    if failed {
                        stats.frame(frame.data_ref().map_or(0, |d| d.len()), true);
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Poll::Ready(None)
                }
                Some(Ok(frame)) => {
                    let frame = frame.map_data(to_bytes);
                    if let Some(data) = frame.data_ref() {
                        let is_event = !data.is_empty() && !is_comment_only(data);
                        stats.frame(data.len(), is_event);
                        if is_event {
                            // Usage and finish reasons: the chunk with a finish reason (one
                            // probe per event, no copy), any usage chunk after it, or a
                            // Responses terminal event.
                            if is_responses_terminal(data) || carries_outcome(data, *finished) {
                                *finished = true;
                                stats.outcome_frame(data);
                            }
                            responses.observe(data);
                            if is_error_event(data) {
                                let code = error_event_code(data);
                                tracing::warn!(parent: &stats.span, error.code = %code, "upstream error event");
                                stats.failed("error", code);
                                if responses.is_responses() {
                                    *closing = true;
                                } else {
                                    *this.done = true;
                                }
                            }
                        }
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Some(Err(_)) | None if *closing => {
                    *this.done = true;
                    Poll::Ready(None)
                }
                Some(Err(err)) => {
                    let err: BoxError = err.into();
                    let (error_type, code, message) = describe(&*err);
                    tracing::warn!(parent: &stats.span, error.r#type = %error_type, error.code = %code, %message, "stream error");
                    let timeout = find_stream_error(&*err).is_some_and(|e| e.is_timeout());
                    let event = responses.render(&error_type, &code, &message);
                    stats.frame(event.len(), false);
                    stats.failed(if timeout { "timeout" } else { "error" }, code);
                    *this.done = true;
                    Poll::Ready(Some(Ok(Frame::data(event))))
                }
                None => {
                    stats.completed();
                    *this.done = true;
                    Poll::Ready(None)
                }
            },
            KindProj::Normalize {
                mut inner,
                status,
                collected,
                limit,
            } => loop {
                let finished = match ready!(inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            let data = to_bytes(data);
                            let room = limit.saturating_sub(collected.len());
                            collected.put_slice(&data[..data.len().min(room)]);
                        }
                        collected.len() >= *limit
                    }
                    Some(Err(_)) | None => true,
                };
                if finished {
                    let (body, code) = normalize_error_body(*status, collected);
                    tracing::warn!(parent: &stats.span, http.status = status.as_u16(), error.code = %code, "error response");
                    stats.frame(body.len(), false);
                    stats.failed("http_error", code);
                    *this.done = true;
                    return Poll::Ready(Some(Ok(Frame::data(body))));
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Passthrough { inner } if !self.done => inner.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            _ => SizeHint::default(),
        }
    }
}
