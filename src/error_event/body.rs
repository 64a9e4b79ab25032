use super::render::normalize_error_body;
use crate::body_util::to_bytes;
use crate::error::{BoxError, describe};
use crate::standard::frame::{
    error_event_code, is_comment_only, is_error_event, is_responses_event, sequence_number,
};
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

/// Knows whether the stream is a Responses API stream, its response id and its last
/// `sequence_number`.
#[derive(Default)]
struct ResponsesTracker {
    mode: Mode,
    /// The id of `response.created` (read once), for the `response.failed` after an error.
    response_id: Option<String>,
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
                self.response_id = created_id(frame);
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

    /// The error event; in a Responses stream the `error` event and then `response.failed`
    /// (one body frame, two events), as OpenAI ends a failed stream.
    fn render(&self, error_type: &str, code: &str, message: &str) -> Bytes {
        match self.mode {
            Mode::Responses { next_sequence } => {
                let error = responses_error_frame(next_sequence, error_type, code, message);
                let failed = serde_json::json!({
                    "type": "response.failed",
                    "sequence_number": next_sequence + 1,
                    "response": {
                        "id": self.response_id.as_deref().unwrap_or("resp_unknown"),
                        "object": "response",
                        "status": "failed",
                        "error": {"code": code, "message": message},
                        "output": [],
                    },
                });
                let mut both = error.to_vec();
                both.extend_from_slice(b"event: response.failed\ndata: ");
                serde_json::to_writer(&mut both, &failed).unwrap_or_default();
                both.extend_from_slice(b"\n\n");
                Bytes::from(both)
            }
            _ => error_frame(error_type, code, message),
        }
    }
}

/// The response id of a `response.created` frame.
fn created_id(frame: &[u8]) -> Option<String> {
    let start = memchr::memmem::find(frame, b"data: ")? + 6;
    let end = start + memchr::memchr(b'\n', &frame[start..])?;
    let data: serde_json::Value = serde_json::from_slice(&frame[start..end]).ok()?;
    (data["type"] == "response.created")
        .then(|| data["response"]["id"].as_str().map(str::to_owned))
        .flatten()
}

impl<B> ErrorEventBody<B> {
    pub(crate) fn stream(inner: B) -> Self {
        Self::new(Kind::Stream {
            inner,
            responses: ResponsesTracker::default(),
            closing: false,
        })
    }

    pub(crate) fn normalize(inner: B, status: StatusCode, limit: usize) -> Self {
        Self::new(Kind::Normalize {
            inner,
            status,
            collected: BytesMut::new(),
            limit,
        })
    }

    pub(crate) fn passthrough(inner: B) -> Self {
        Self::new(Kind::Passthrough { inner })
    }

    pub(crate) fn full(data: Bytes) -> Self {
        Self::new(Kind::Full { data: Some(data) })
    }

    fn new(kind: Kind<B>) -> Self {
        ErrorEventBody { kind, done: false }
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
                    // hyper stops at the body's end (or its content-length) without polling
                    // for `None`: this body has ended too.
                    if inner.is_end_stream() {
                        *this.done = true;
                    }
                    Poll::Ready(Some(Ok(frame.map_data(to_bytes))))
                }
                Some(Err(err)) => {
                    let err: BoxError = err.into();
                    let (error_type, code, message) = describe(&*err);
                    tracing::warn!(error.r#type = %error_type, error.code = %code, message = crate::error::log_field(&message), "stream error");
                    *this.done = true;
                    Poll::Ready(Some(Err(err)))
                }
                None => {
                    *this.done = true;
                    Poll::Ready(None)
                }
            },
            KindProj::Stream {
                inner,
                responses,
                closing,
            } => match ready!(inner.poll_frame(cx)) {
                Some(Ok(frame)) if *closing => {
                    *this.done = true;
                    let frame = frame.map_data(to_bytes);
                    let failed = frame
                        .data_ref()
                        .is_some_and(|d| d.starts_with(b"event: response.failed\n"));
                    if failed {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Poll::Ready(None)
                }
                Some(Ok(frame)) => {
                    let frame = frame.map_data(to_bytes);
                    if let Some(data) = frame.data_ref() {
                        if !data.is_empty() && !is_comment_only(data) {
                            responses.observe(data);
                            if is_error_event(data) {
                                let code = error_event_code(data);
                                tracing::warn!(error.code = %code, "upstream error event");
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
                    tracing::warn!(error.r#type = %error_type, error.code = %code, message = crate::error::log_field(&message), "stream error");
                    let event = responses.render(&error_type, &code, &message);
                    *this.done = true;
                    Poll::Ready(Some(Ok(Frame::data(event))))
                }
                None => {
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
                    tracing::warn!(http.status = status.as_u16(), error.code = %code, "error response");
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
