use super::{Shutdown, StreamTimeouts};
use crate::body_util::to_bytes;
use crate::error::{BoxError, StreamError};
use crate::standard::frame::is_comment_only;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{Instant, Sleep};

static KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

pin_project! {
    /// Response body for [`StreamTimeout`](super::StreamTimeout): the inner body under idle
    /// and total timeouts (with optional keep-alives), or a JSON error body.
    pub struct TimeoutBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Streaming {
            #[pin]
            inner: B,
            #[pin]
            timer: Option<Sleep>,
            // Resolves when the server's `Shutdown` is triggered (looked at only when the
            // inner body has nothing ready).
            #[pin]
            shut: Option<OwnedNotified>,
            // Triggered before the body started.
            shut_already: bool,
            clock: Clock,
            done: bool,
        },
        Full {
            data: Option<Bytes>,
        },
    }
}

/// When things happened, and so when the timer must fire next.
struct Clock {
    idle: Option<Duration>,
    total: Option<(Instant, Duration)>,
    keep_alive: Option<Duration>,
    last_event: Instant,
    last_sent: Instant,
}

impl Clock {
    fn next_wake(&self) -> Option<Instant> {
        let idle = self.idle.map(|idle| self.last_event + idle);
        let total = self.total.map(|(deadline, _)| deadline);
        let keep_alive = self.keep_alive.map(|every| self.last_sent + every);
        [idle, total, keep_alive].into_iter().flatten().min()
    }
}

impl<B> TimeoutBody<B> {
    pub(crate) fn streaming(
        inner: B,
        timeouts: StreamTimeouts,
        keep_alive: Option<Duration>,
        started: Instant,
        shutdown: Option<Shutdown>,
    ) -> Self {
        let now = Instant::now();
        let clock = Clock {
            idle: timeouts.idle,
            total: timeouts.total.map(|total| (started + total, total)),
            keep_alive,
            last_event: now,
            last_sent: now,
        };
        TimeoutBody {
            kind: Kind::Streaming {
                inner,
                timer: clock.next_wake().map(tokio::time::sleep_until),
                shut: shutdown.as_ref().and_then(Shutdown::watch),
                shut_already: shutdown.as_ref().is_some_and(Shutdown::is_triggered),
                clock,
                done: false,
            },
        }
    }

    /// A complete body of `data` (error responses made by the layer).
    pub(crate) fn full(data: Bytes) -> Self {
        TimeoutBody {
            kind: Kind::Full { data: Some(data) },
        }
    }
}

impl<B> Body for TimeoutBody<B>
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
        let (inner, mut timer, shut, shut_already, clock, done) =
            match self.project().kind.project() {
                KindProj::Full { data } => {
                    return Poll::Ready(data.take().map(|d| Ok(Frame::data(d))));
                }
                KindProj::Streaming {
                    inner,
                    timer,
                    shut,
                    shut_already,
                    clock,
                    done,
                } => (inner, timer, shut, shut_already, clock, done),
            };
        if *done {
            return Poll::Ready(None);
        }
        if *shut_already {
            *done = true;
            return Poll::Ready(Some(Err(StreamError::ShuttingDown.into())));
        }
        match inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = frame.map_data(to_bytes);
                if timer.is_some() {
                    let now = Instant::now();
                    clock.last_sent = now;
                    if frame.data_ref().is_some_and(|data| !is_comment_only(data)) {
                        clock.last_event = now;
                    }
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(Some(Err(err))) => {
                *done = true;
                return Poll::Ready(Some(Err(err.into())));
            }
            Poll::Ready(None) => {
                *done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if let Some(shut) = shut.as_pin_mut() {
            if shut.poll(cx).is_ready() {
                *done = true;
                return Poll::Ready(Some(Err(StreamError::ShuttingDown.into())));
            }
        }
        loop {
            let Some(mut sleep) = timer.as_mut().as_pin_mut() else {
                return Poll::Pending;
            };
            ready!(sleep.as_mut().poll(cx));
            let now = Instant::now();
            let expired = match (clock.total, clock.idle) {
                (Some((deadline, total)), _) if now >= deadline => {
                    Some(StreamError::Deadline { total })
                }
                (_, Some(idle)) if now >= clock.last_event + idle => {
                    Some(StreamError::IdleTimeout { idle })
                }
                _ => None,
            };
            if let Some(err) = expired {
                *done = true;
                return Poll::Ready(Some(Err(err.into())));
            }
            let keep_alive_due = clock
                .keep_alive
                .is_some_and(|every| now >= clock.last_sent + every);
            if keep_alive_due {
                clock.last_sent = now;
            }
            if let Some(next) = clock.next_wake() {
                sleep.as_mut().reset(next);
            }
            if keep_alive_due {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Streaming { inner, done, .. } => *done || inner.is_end_stream(),
            Kind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            // Keep-alive comments may be added: only the lower bound still holds.
            Kind::Streaming { inner, clock, .. } if clock.keep_alive.is_some() => {
                let mut hint = SizeHint::new();
                hint.set_lower(inner.size_hint().lower());
                hint
            }
            Kind::Streaming { inner, .. } => inner.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
