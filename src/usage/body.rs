use super::ChatNormalizer;
use crate::body_util::{poll_as_bytes, to_bytes};
use crate::error::BoxError;
use crate::standard::Frames;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response body for [`UsageLastChunk`](super::UsageLastChunk).
    pub struct UsageBody<B> {
        #[pin]
        inner: B,
        state: Option<Normalizing>,
    }
}

struct Normalizing {
    normalizer: ChatNormalizer,
    out: Frames,
    inner_done: bool,
}

impl<B> UsageBody<B> {
    pub(crate) fn new(inner: B, streaming: bool) -> Self {
        let state = streaming.then(|| Normalizing {
            normalizer: ChatNormalizer::new(),
            out: Frames::new(),
            inner_done: false,
        });
        UsageBody { inner, state }
    }
}

impl<B> Body for UsageBody<B>
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
        let mut this = self.project();
        let Some(st) = this.state.as_mut() else {
            return poll_as_bytes(this.inner, cx);
        };
        loop {
            if let Some(frame) = st.out.pop() {
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            if st.inner_done || st.normalizer.has_ended() {
                // After [DONE] or an error event nothing more is read: the upstream is done.
                return Poll::Ready(None);
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => st.normalizer.on_frame(to_bytes(data), &mut st.out),
                    Err(frame) => return Poll::Ready(Some(Ok(frame.map_data(to_bytes)))),
                },
                Some(Err(err)) => return Poll::Ready(Some(Err(err.into()))),
                // The upstream ended: after `[DONE]` or an error nothing is added; otherwise
                // the stream was cut off, which the reframer reports (nothing is invented).
                None => st.inner_done = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            None => self.inner.is_end_stream(),
            Some(st) => st.out.is_empty() && (st.inner_done || st.normalizer.has_ended()),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            None => self.inner.size_hint(),
            Some(_) => SizeHint::default(),
        }
    }
}
