use super::Secrets;
use super::secrets::Matcher;
use crate::body_util::{poll_as_bytes, to_bytes};
use crate::error::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response body for [`Redact`](super::Redact): the inner body with every secret
    /// replaced by [`REDACTED`](super::REDACTED).
    ///
    /// It keeps back, from one data frame to the next, only the tail of a frame that could be
    /// the start of a secret (fewer bytes than the longest secret), and sends it at the end
    /// of the body, before trailers or before an error. A frame that ends with a byte no secret
    /// holds (the `\n` of every SSE event) keeps nothing back; a frame with no secret and nothing kept back passes as the
    /// same `Bytes`. Without secrets the body passes untouched.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use tower_llm_stream::redact::{RedactBody, Secrets};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let secrets = Secrets::new(["sk-abcdefgh"]);
    /// let body = RedactBody::new(Full::new(Bytes::from("key: sk-abcdefgh")), &secrets);
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "key: [redacted]");
    /// # }
    /// ```
    pub struct RedactBody<B> {
        #[pin]
        inner: B,
        state: Option<State>,
    }
}

/// The redaction's state, when there are secrets.
struct State {
    matcher: Arc<Matcher>,
    /// The tail of the data so far that could be the start of a secret.
    held: Vec<u8>,
    /// An item of the inner body (trailers, an error) waiting for `held` to go first.
    queued: Option<Result<Frame<Bytes>, BoxError>>,
    /// The inner body has ended.
    ended: bool,
}

impl State {
    /// The next data frame's output (possibly empty: all of it kept back).
    fn feed(&mut self, data: Bytes, at_end: bool) -> Bytes {
        if self.held.is_empty() {
            let (redacted, cut) = self.matcher.scan(&data, at_end);
            self.held.extend_from_slice(&data[cut..]);
            match redacted {
                Some(redacted) => Bytes::from(redacted),
                None if cut == data.len() => data,
                None => data.slice(..cut),
            }
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(&data);
            let (redacted, cut) = self.matcher.scan(&joined, at_end);
            self.held.extend_from_slice(&joined[cut..]);
            match redacted {
                Some(redacted) => Bytes::from(redacted),
                None => {
                    joined.truncate(cut);
                    Bytes::from(joined)
                }
            }
        }
    }

    /// What was kept back, redacted, at the end of the data.
    fn flush(&mut self) -> Bytes {
        let held = std::mem::take(&mut self.held);
        match self.matcher.scan(&held, true).0 {
            Some(redacted) => Bytes::from(redacted),
            None => Bytes::from(held),
        }
    }

    /// Sends `item` (trailers, an error) after what was kept back.
    fn after_held(
        &mut self,
        item: Result<Frame<Bytes>, BoxError>,
    ) -> Result<Frame<Bytes>, BoxError> {
        if self.held.is_empty() {
            return item;
        }
        self.queued = Some(item);
        Ok(Frame::data(self.flush()))
    }
}

impl<B> RedactBody<B> {
    /// Redacts `secrets` from `inner`; without secrets, `inner` passes untouched.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body::Body;
    /// use http_body_util::Full;
    /// use tower_llm_stream::redact::{RedactBody, Secrets};
    ///
    /// let body = RedactBody::new(Full::new(Bytes::from("hello")), &Secrets::default());
    /// assert_eq!(body.size_hint().exact(), Some(5)); // untouched: the length is known
    /// ```
    pub fn new(inner: B, secrets: &Secrets) -> Self {
        RedactBody {
            inner,
            state: secrets.matcher().map(|matcher| State {
                matcher: matcher.clone(),
                held: Vec::new(),
                queued: None,
                ended: false,
            }),
        }
    }
}

impl<B> Body for RedactBody<B>
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
        let Some(state) = this.state else {
            return poll_as_bytes(this.inner, cx);
        };
        if let Some(item) = state.queued.take() {
            return Poll::Ready(Some(item));
        }
        if state.ended {
            return Poll::Ready(None);
        }
        let mut inner = this.inner;
        loop {
            match ready!(inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        // hyper stops at the body's end (or its content-length) without
                        // polling for `None`: nothing may be kept back then.
                        let at_end = inner.is_end_stream();
                        let out = state.feed(to_bytes(data), at_end);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                        if at_end {
                            state.ended = true;
                            return Poll::Ready(None);
                        }
                    }
                    Err(frame) => {
                        return Poll::Ready(Some(state.after_held(Ok(frame.map_data(to_bytes)))));
                    }
                },
                Some(Err(err)) => return Poll::Ready(Some(state.after_held(Err(err.into())))),
                None => {
                    state.ended = true;
                    if state.held.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(state.flush()))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            None => self.inner.is_end_stream(),
            Some(state) => {
                state.queued.is_none()
                    && state.held.is_empty()
                    && (state.ended || self.inner.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            None => self.inner.size_hint(),
            // Replacements change the length.
            Some(_) if self.is_end_stream() => SizeHint::with_exact(0),
            Some(_) => SizeHint::default(),
        }
    }
}

impl<B> std::fmt::Debug for RedactBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedactBody")
            .field("redacting", &self.state.is_some())
            .finish_non_exhaustive()
    }
}
