//! Fewer writes for bursts. The layers hand over one event per frame, and hyper writes (one
//! `writev`) whenever the body has nothing more ready. When an upstream sends a burst (a fast
//! model, a buffered provider, a replay), its events reach the response body one at a time
//! through the client connection's task, so each would cost a system call of its own. This body
//! joins frames that are ready back to back into one, yielding to the scheduler once before it
//! writes (twice: see [`YIELDS`]) so the upstream connection can hand over what it has already read. It never waits on
//! a timer: an event that arrives alone is written after two scheduler passes.

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Stop joining at this size: one write is plenty.
const MAX_JOINED: usize = 64 * 1024;

/// Scheduler passes to wait for the next frame before writing what is held. hyper's client
/// needs two to hand over the next chunk it has already read (its connection task wakes, then
/// the body channel's receiver). A self-wake puts this task behind the upstream connection's
/// on a single-threaded runtime (the proxy runs one per core); on tokio's multi-threaded
/// runtime the connection task may run on another thread, and fewer bursts are joined.
const YIELDS: u8 = 2;

/// See the module docs.
pub struct CoalesceBody<B: Body> {
    inner: Pin<Box<B>>,
    /// The first frame, kept as is (no copy when it goes out alone).
    first: Option<Bytes>,
    /// The frames joined after it.
    joined: BytesMut,
    /// Scheduler passes given up since the last frame arrived.
    yields: u8,
    /// What the inner body yielded after the data held here (trailers, an error, the end).
    after: Option<Option<Result<Frame<Bytes>, B::Error>>>,
    /// The end was handed out.
    ended: bool,
}

// Nothing in it is pinned in place (the inner body is boxed).
impl<B: Body> Unpin for CoalesceBody<B> {}

impl<B: Body<Data = Bytes>> CoalesceBody<B> {
    pub fn new(inner: B) -> Self {
        CoalesceBody {
            inner: Box::pin(inner),
            first: None,
            joined: BytesMut::new(),
            yields: 0,
            after: None,
            ended: false,
        }
    }

    fn held(&self) -> usize {
        self.first.as_ref().map_or(0, Bytes::len) + self.joined.len()
    }

    fn take(&mut self) -> Option<Bytes> {
        let first = self.first.take()?;
        if self.joined.is_empty() {
            return Some(first);
        }
        let mut all = BytesMut::with_capacity(first.len() + self.joined.len());
        all.extend_from_slice(&first);
        all.extend_from_slice(&self.joined);
        self.joined.clear();
        Some(all.freeze())
    }
}

impl<B: Body<Data = Bytes>> Body for CoalesceBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if this.first.is_none() {
            if let Some(after) = this.after.take() {
                this.ended = after.is_none();
                return Poll::Ready(after);
            }
        }
        loop {
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if this.first.is_none() {
                            this.first = Some(data);
                        } else {
                            this.joined.extend_from_slice(&data);
                        }
                        this.yields = 0;
                        if this.held() >= MAX_JOINED {
                            return Poll::Ready(this.take().map(|d| Ok(Frame::data(d))));
                        }
                    }
                    Err(frame) => {
                        let frame = frame.map_data(|d| d);
                        return match this.take() {
                            Some(data) => {
                                this.after = Some(Some(Ok(frame)));
                                Poll::Ready(Some(Ok(Frame::data(data))))
                            }
                            None => Poll::Ready(Some(Ok(frame))),
                        };
                    }
                },
                Poll::Ready(other) => {
                    return match this.take() {
                        Some(data) => {
                            this.after = Some(other);
                            Poll::Ready(Some(Ok(Frame::data(data))))
                        }
                        None => {
                            this.ended = other.is_none();
                            Poll::Ready(other)
                        }
                    };
                }
                Poll::Pending => {
                    if this.first.is_none() {
                        return Poll::Pending;
                    }
                    if this.yields < YIELDS {
                        // Let the upstream connection's task run: it may hold more.
                        this.yields += 1;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    this.yields = 0;
                    return Poll::Ready(this.take().map(|d| Ok(Frame::data(d))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
            || self.first.is_none()
                && match &self.after {
                    Some(None) => true,
                    Some(Some(_)) => false,
                    None => self.inner.is_end_stream(),
                }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test]
    async fn frames_ready_together_are_joined_and_nothing_is_lost() {
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
            Ok(Frame::data(Bytes::from("data: 1\n\n"))),
            Ok(Frame::data(Bytes::from("data: 2\n\n"))),
            Ok(Frame::data(Bytes::from("data: 3\n\n"))),
            Err(std::io::Error::other("reset")),
        ];
        let mut body = CoalesceBody::new(StreamBody::new(futures_util::stream::iter(frames)));
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
        assert!(
            body.frame().await.unwrap().is_err(),
            "the error comes after the data"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_that_arrives_alone_is_not_held() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let mut body = CoalesceBody::new(StreamBody::new(tokio_stream_from(rx)));
        tx.send(Ok(Frame::data(Bytes::from("data: a\n\n"))))
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        let a = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(a, "data: a\n\n");
        assert_eq!(started.elapsed(), std::time::Duration::ZERO, "no timer");
        drop(tx);
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
    }

    fn tokio_stream_from<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
