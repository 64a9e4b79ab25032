//! Hands hyper the frames a response has ready as one: [`ReadyFrames`].

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// At most this many bytes are joined into one frame.
pub const MAX_JOINED: usize = 16 * 1024;

pin_project_lite::pin_project! {
    /// A body whose data frames, when several are ready at once, come out joined in one frame
    /// (up to [`MAX_JOINED`] bytes); a frame that is alone comes out as it is, at once. Nothing
    /// waits for more: only what the inner body has ready without waiting is joined.
    ///
    /// The layers give one event per frame; on the wire that makes one HTTP chunk per event,
    /// each with hyper's per-frame work (chunk header, buffering). A burst of 24 events (an
    /// upstream that answers at once) leaves as one chunk instead. SSE clients do not see
    /// chunk boundaries.
    pub struct ReadyFrames<B: Body> {
        #[pin]
        inner: B,
        // What the inner body gave after data was joined (trailers or an error): handed on
        // next time.
        held: Option<Result<Frame<Bytes>, B::Error>>,
        ended: bool,
    }
}

impl<B: Body<Data = Bytes>> ReadyFrames<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        ReadyFrames {
            inner,
            held: None,
            ended: false,
        }
    }
}

impl<B: Body<Data = Bytes>> Body for ReadyFrames<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        if let Some(held) = this.held.take() {
            return Poll::Ready(Some(held));
        }
        if *this.ended {
            return Poll::Ready(None);
        }
        let mut first: Option<Bytes> = None;
        let mut joined: Option<BytesMut> = None;
        loop {
            let size = joined
                .as_ref()
                .map_or_else(|| first.as_ref().map_or(0, Bytes::len), BytesMut::len);
            if size >= MAX_JOINED {
                break;
            }
            let polled = this.inner.as_mut().poll_frame(cx);
            let taken = first.is_some() || joined.is_some();
            match polled {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => match (&mut joined, &first) {
                        (Some(buffer), _) => buffer.extend_from_slice(&data),
                        (None, Some(previous)) => {
                            let mut buffer = BytesMut::with_capacity(
                                (previous.len() + data.len()).clamp(4096, MAX_JOINED),
                            );
                            buffer.extend_from_slice(previous);
                            buffer.extend_from_slice(&data);
                            first = None;
                            joined = Some(buffer);
                        }
                        (None, None) => first = Some(data),
                    },
                    Err(frame) if taken => {
                        *this.held = Some(Ok(frame));
                        break;
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(Some(Err(e))) if taken => {
                    *this.held = Some(Err(e));
                    break;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    *this.ended = true;
                    if !taken {
                        return Poll::Ready(None);
                    }
                    break;
                }
                Poll::Pending if taken => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        let data = joined.map_or_else(|| first.unwrap_or_default(), BytesMut::freeze);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        if self.held.is_some() {
            return SizeHint::default();
        }
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::collections::VecDeque;

    /// Frames given out as scripted: `None` is a `Pending` (waking itself).
    struct Script(VecDeque<Option<Result<Frame<Bytes>, &'static str>>>);

    impl Body for Script {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, &'static str>>> {
            match self.0.pop_front() {
                Some(Some(frame)) => Poll::Ready(Some(frame)),
                Some(None) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                None => Poll::Ready(None),
            }
        }
    }

    fn data(text: &'static str) -> Option<Result<Frame<Bytes>, &'static str>> {
        Some(Ok(Frame::data(Bytes::from_static(text.as_bytes()))))
    }

    async fn frames(script: Vec<Option<Result<Frame<Bytes>, &'static str>>>) -> Vec<String> {
        let mut body = ReadyFrames::new(Script(script.into()));
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            out.push(match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => String::from_utf8(data.to_vec()).unwrap(),
                    Err(frame) => format!("trailers {:?}", frame.into_trailers().ok()),
                },
                Err(e) => format!("error {e}"),
            });
        }
        out
    }

    #[tokio::test]
    async fn frames_ready_together_leave_together_and_nothing_waits() {
        let out = frames(vec![
            data("a"),
            data("b"),
            data("c"),
            None,
            data("d"),
            None,
            data("e"),
            data("f"),
        ])
        .await;
        assert_eq!(out, ["abc", "d", "ef"]);
    }

    #[tokio::test]
    async fn trailers_and_errors_come_after_the_data_joined_before_them() {
        let trailers = Some(Ok(Frame::trailers(http::HeaderMap::new())));
        let out = frames(vec![data("a"), data("b"), trailers, data("c")]).await;
        assert_eq!(out, ["ab", "trailers Some({})", "c"]);
        let out = frames(vec![data("a"), Some(Err("cut")), data("b")]).await;
        assert_eq!(out, ["a", "error cut", "b"]);
    }

    #[tokio::test]
    async fn a_join_stops_at_the_size_limit() {
        let big: &'static str = "x".repeat(MAX_JOINED - 1).leak();
        let out = frames(vec![data(big), data("yy"), data("z")]).await;
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_JOINED + 1);
        assert_eq!(out[1], "z");
    }
}
