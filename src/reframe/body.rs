use crate::body_util::{poll_as_bytes, to_bytes};
use crate::dialect::{Dialect, Passthrough};
use crate::error::{BoxError, StreamError};
use crate::eventstream::EventStreamDecoder;
use crate::ndjson::NdjsonDecoder;
use crate::sse::{Block, DecodeError, Decoder};
use crate::standard::Frames;
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response body for [`SseReframe`](super::SseReframe): one complete canonical block per
    /// data frame (or the inner body untouched, for responses that are not event streams).
    pub struct ReframeBody<B, D = Passthrough> {
        #[pin]
        inner: B,
        state: Option<Reframing<D>>,
    }
}

/// Bytes in, blocks out: SSE, or NDJSON for dialects that read it.
enum Framer {
    Sse(Decoder),
    Ndjson(NdjsonDecoder),
    AwsEventStream(EventStreamDecoder),
}

impl Framer {
    fn push(&mut self, chunk: Bytes) {
        match self {
            Framer::Sse(d) => d.push(chunk),
            Framer::Ndjson(d) => d.push(chunk),
            Framer::AwsEventStream(d) => d.push(chunk),
        }
    }

    fn finish(&mut self) {
        match self {
            Framer::Sse(d) => d.finish(),
            Framer::Ndjson(d) => d.finish(),
            Framer::AwsEventStream(d) => d.finish(),
        }
    }

    fn next_block(&mut self) -> Option<Result<Block, DecodeError>> {
        match self {
            Framer::Sse(d) => d.next_block(),
            Framer::Ndjson(d) => d.next_block(),
            Framer::AwsEventStream(d) => d.next_block(),
        }
    }
}

struct Reframing<D> {
    decoder: Framer,
    dialect: D,
    out: Frames,
    trailers: Option<HeaderMap>,
    error: Option<BoxError>,
    inner_done: bool,
    done: bool,
}

impl<B, D> ReframeBody<B, D> {
    /// Reframes `inner`'s event stream, translating it with `dialect`.
    pub fn reframe(inner: B, dialect: D, max_event_size: usize) -> Self {
        Self::with_framer(
            inner,
            dialect,
            Framer::Sse(Decoder::with_max_event_size(max_event_size)),
        )
    }

    /// Reframes `inner`'s NDJSON stream (one event per line), translating it with `dialect`.
    pub fn reframe_ndjson(inner: B, dialect: D, max_event_size: usize) -> Self {
        Self::with_framer(
            inner,
            dialect,
            Framer::Ndjson(NdjsonDecoder::new(max_event_size)),
        )
    }

    /// Reframes `inner`'s AWS event-stream (binary messages), translating it with `dialect`.
    pub fn reframe_aws_event_stream(inner: B, dialect: D, max_event_size: usize) -> Self {
        let decoder = Framer::AwsEventStream(EventStreamDecoder::new(max_event_size));
        Self::with_framer(inner, dialect, decoder)
    }

    fn with_framer(inner: B, dialect: D, decoder: Framer) -> Self {
        ReframeBody {
            inner,
            state: Some(Reframing {
                decoder,
                dialect,
                out: Frames::new(),
                trailers: None,
                error: None,
                inner_done: false,
                done: false,
            }),
        }
    }

    /// Fails at once with `malformed_event`: the body is compressed (`content-encoding`),
    /// which the layers do not decode; the message says where to decode it.
    pub(crate) fn undecodable(mut self, encoding: &http::HeaderValue) -> Self {
        if let Some(st) = &mut self.state {
            let detail = format!(
                "the upstream body is {}-encoded: decode it before the layers (tower_http::decompression), or ask the upstream for `accept-encoding: identity`",
                String::from_utf8_lossy(encoding.as_bytes())
            );
            st.error = Some(StreamError::MalformedEvent { detail }.into());
        }
        self
    }

    /// Passes `inner` through untouched.
    pub fn passthrough(inner: B) -> Self {
        ReframeBody { inner, state: None }
    }
}

impl<B: fmt::Debug, D> fmt::Debug for ReframeBody<B, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReframeBody")
            .field("inner", &self.inner)
            .field("reframing", &self.state.is_some())
            .finish()
    }
}

impl<B, D> Body for ReframeBody<B, D>
where
    B: Body,
    B::Error: Into<BoxError>,
    D: Dialect,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let Some(st) = this.state.as_mut() else {
            return poll_as_bytes(this.inner, cx);
        };
        loop {
            if let Some(frame) = st.out.pop() {
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            if let Some(err) = st.error.take() {
                st.done = true;
                st.trailers = None;
                return Poll::Ready(Some(Err(err)));
            }
            if st.done {
                return Poll::Ready(st.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match st.decoder.next_block() {
                Some(Ok(block)) if block.is_terminated() => {
                    if let Err(err) = st.dialect.on_block(block, &mut st.out) {
                        st.error = Some(err.into());
                    }
                    continue;
                }
                Some(Ok(unterminated)) => {
                    if let Err(err) = st.dialect.on_unterminated(unterminated, &mut st.out) {
                        st.error = Some(err.into());
                    }
                    continue;
                }
                Some(Err(DecodeError::EventTooLarge { limit })) => {
                    st.error = Some(StreamError::EventTooLarge { limit }.into());
                    continue;
                }
                Some(Err(DecodeError::Corrupt { detail })) => {
                    st.error = Some(StreamError::MalformedEvent { detail }.into());
                    continue;
                }
                None if st.inner_done => {
                    match st.dialect.on_end(&mut st.out) {
                        Ok(()) => st.done = true,
                        Err(err) => st.error = Some(err.into()),
                    }
                    continue;
                }
                None => {}
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => st.decoder.push(to_bytes(data)),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            match &mut st.trailers {
                                Some(existing) => existing.extend(trailers),
                                None => st.trailers = Some(trailers),
                            }
                        }
                    }
                },
                Some(Err(err)) => st.error = Some(StreamError::Upstream(err.into()).into()),
                None => {
                    st.decoder.finish();
                    st.inner_done = true;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            None => self.inner.is_end_stream(),
            Some(st) => st.done && st.out.is_empty() && st.error.is_none() && st.trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            None => self.inner.size_hint(),
            Some(_) => SizeHint::default(),
        }
    }
}
