use super::Numbering;
use super::produce::with_id;
use super::store::{Read, StoreError, StoredEvent, StreamState, StreamStore};
use crate::standard::{error_frame, responses_error_frame};
use bytes::Bytes;
use http_body::{Body, Frame};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// How long one read waits for the next event before it asks again (and sees a lost
/// producer).
const READ_WAIT: Duration = Duration::from_secs(5);

type Reading = Pin<Box<dyn Future<Output = Result<Option<Read>, StoreError>> + Send>>;

/// A reader of a resumable stream: its events after a number, each with `id: N` (or as they
/// are, for a Responses stream: [`numbering`](ResumeBody::numbering)), then the rest as they
/// are stored, to the end. A stream that ends other than finished ends with an error
/// event: `stream_cancelled`, `stream_producer_lost` (its producer's process died),
/// `stream_store_error`; a stream that expired meanwhile with `stream_not_found`.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::BodyExt;
/// use std::time::Duration;
/// use tower_llm_stream::resume::{MemoryStore, ResumeBody, StreamState, StreamStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryStore::new();
/// store.create("s1", Duration::from_secs(60)).await.unwrap();
/// for (n, text) in ["data: a\n\n", "data: b\n\n"].into_iter().enumerate() {
///     store.append("s1", n as u64 + 1, Bytes::from(text)).await.unwrap();
/// }
/// store.end("s1", StreamState::Finished).await.unwrap();
/// let body = ResumeBody::new(store, "s1", 1);
/// assert_eq!(body.collect().await.unwrap().to_bytes(), "id: 2\ndata: b\n\n");
/// # }
/// ```
pub struct ResumeBody<St> {
    store: St,
    id: String,
    after: u64,
    queue: VecDeque<StoredEvent>,
    reading: Option<Reading>,
    /// Set when the last events are queued: how the stream ended.
    ended: Option<StreamState>,
    done: bool,
    numbering: Numbering,
}

impl<St: StreamStore> ResumeBody<St> {
    /// Reads stream `id` of `store` from the event after number `after` (0: from the first).
    pub fn new(store: St, id: impl Into<String>, after: u64) -> Self {
        ResumeBody {
            store,
            id: id.into(),
            after,
            queue: VecDeque::new(),
            reading: None,
            ended: None,
            done: false,
            numbering: Numbering::SseIds,
        }
    }

    /// How the events are numbered for the reader, and the shape of the error event that ends
    /// a stream cancelled, lost or expired ([`Numbering::SseIds`] unless set).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::BodyExt;
    /// use std::time::Duration;
    /// use tower_llm_stream::resume::{MemoryStore, Numbering, ResumeBody, StreamState, StreamStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = MemoryStore::new();
    /// store.create("r1", Duration::from_secs(60)).await.unwrap();
    /// let created = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n";
    /// store.append("r1", 1, Bytes::from(created)).await.unwrap();
    /// store.cancel("r1").await.unwrap();
    /// store.end("r1", StreamState::Cancelled).await.unwrap();
    /// let body = ResumeBody::new(store, "r1", 0).numbering(Numbering::SequenceNumbers);
    /// let text = body.collect().await.unwrap().to_bytes();
    /// // As stored, then the error event with the next sequence_number.
    /// assert!(text.starts_with(created.as_bytes()));
    /// assert!(text.ends_with(b"\n\n"));
    /// let last = &text[created.len()..];
    /// assert!(last.starts_with(b"event: error\ndata: {\"type\":\"error\",\"sequence_number\":1,\"code\":\"stream_cancelled\""));
    /// # }
    /// ```
    #[must_use]
    pub fn numbering(mut self, numbering: Numbering) -> Self {
        self.numbering = numbering;
        self
    }

    /// The error event that ends the stream: in the shape of [`Numbering`]; for a Responses
    /// stream with the `sequence_number` after the last event read.
    fn error_event(&self, error_type: &str, code: &str, message: &str) -> Bytes {
        match self.numbering {
            Numbering::SseIds => error_frame(error_type, code, message),
            Numbering::SequenceNumbers => {
                responses_error_frame(self.after, error_type, code, message)
            }
        }
    }
}

impl<St> std::fmt::Debug for ResumeBody<St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeBody")
            .field("id", &self.id)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

/// What a reader is told when a stream ended other than finished: the error's code and message.
fn last_words(state: StreamState) -> Option<(&'static str, &'static str)> {
    Some(match state {
        StreamState::Live | StreamState::Finished => return None,
        StreamState::Cancelled => ("stream_cancelled", "the stream was cancelled"),
        StreamState::ProducerLost => (
            "stream_producer_lost",
            "the server producing this stream stopped (its process ended): start a new request",
        ),
        StreamState::Failed => (
            "stream_store_error",
            "the stream could not be stored to its end: start a new request",
        ),
    })
}

impl<St: StreamStore> Body for ResumeBody<St> {
    type Data = Bytes;
    type Error = StoreError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StoreError>>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.queue.pop_front() {
                this.after = event.number;
                let frame = match this.numbering {
                    Numbering::SseIds => with_id(event.number, &event.frame),
                    Numbering::SequenceNumbers => event.frame,
                };
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            }
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(state) = this.ended {
                this.done = true;
                return Poll::Ready(last_words(state).map(|(code, message)| {
                    Ok(Frame::data(this.error_event("server_error", code, message)))
                }));
            }
            let reading = this.reading.get_or_insert_with(|| {
                let (store, id, after) = (this.store.clone(), this.id.clone(), this.after);
                Box::pin(async move { store.read(&id, after, READ_WAIT).await })
            });
            let read = ready!(reading.as_mut().poll(cx));
            this.reading = None;
            match read {
                Ok(Some(read)) => {
                    this.queue.extend(read.events);
                    if !read.state.is_live() {
                        this.ended = Some(read.state);
                    }
                }
                Ok(None) => {
                    this.done = true;
                    let frame = this.error_event(
                        "invalid_request_error",
                        "stream_not_found",
                        "the stream expired or never was",
                    );
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }
}
