//! Resumable streams: a stream that keeps running when its client goes, and that any client
//! can read again from any event on, on this process or, through Redis, on another replica.
//!
//! A request opts in with a [`Resumable`] extension naming the stream. [`ResumeLayer`] then
//! runs the stream's body in a task of its own (the producer), which stores every event in a
//! [`StreamStore`], numbered from 1, until the stream ends, is cancelled
//! ([`StreamStore::cancel`]) or its deadline passes; the client reads the stream back from
//! the store ([`ResumeBody`]), each event with its `id: N`. A client that comes back reads
//! with [`ResumeBody::new`] from the last number it had: exactly the events after it, byte
//! for byte, then the rest as they are stored. The producer renews a lease; when its process
//! dies, readers get the `stream_producer_lost` error event within
//! [`LEASE`](store::LEASE) plus a read's wait.
//!
//! Requests without the extension pass through untouched.
//!
//! # Stores
//!
//! [`MemoryStore`] keeps the streams in this process (bounded in bytes): a stream resumes only
//! on the process that produces it. `RedisStore` (feature `redis`) keeps them in Redis, on
//! Redis Streams, every key with a TTL: every replica sharing the Redis resumes (and cancels)
//! any stream, and a stream is still produced once, by the replica that started it.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_llm_stream::resume::{MemoryStore, Resumable, ResumeBody, ResumeLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let upstream = tower::service_fn(|_req: Request<()>| async {
//!     let body = Full::new(Bytes::from_static(b"data: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: [DONE]\n\n"));
//!     Ok::<_, std::convert::Infallible>(
//!         Response::builder().header("content-type", "text/event-stream").body(body).unwrap(),
//!     )
//! });
//! let store = MemoryStore::new();
//! let service = ServiceBuilder::new().layer(ResumeLayer::new(store.clone())).service(upstream);
//!
//! let mut request = Request::new(());
//! request.extensions_mut().insert(Resumable::new("stream-1"));
//! let first = service.oneshot(request).await.unwrap().into_body().collect().await.unwrap();
//! assert!(first.to_bytes().starts_with(b"id: 1\ndata: {\"n\":1}\n\n"));
//!
//! // Another client, that had event 1, resumes.
//! let rest = ResumeBody::new(store, "stream-1", 1).collect().await.unwrap().to_bytes();
//! assert_eq!(rest, "id: 2\ndata: {\"n\":2}\n\nid: 3\ndata: [DONE]\n\n");
//! # }
//! ```

mod body;
mod layer;
mod memory;
mod produce;
mod producers;
#[cfg(feature = "redis")]
mod redis_store;
mod service;
pub mod store;

pub use self::body::ResumeBody;
pub use self::layer::ResumeLayer;
pub use self::memory::MemoryStore;
pub use self::producers::Producers;
#[cfg(feature = "redis")]
pub use self::redis_store::RedisStore;
pub use self::service::{Resume, ResumeResponseBody};
pub use self::store::{Read, StoreError, StoredEvent, StreamState, StreamStore};

/// A request extension: make this request's stream resumable under this id (unique per
/// stream; the application makes it, e.g. a random UUID, and hands it to its client).
///
/// ```
/// use tower_llm_stream::resume::{Numbering, Resumable};
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(Resumable::new("stream-7"));
/// // A Responses API stream, whose events number themselves (`sequence_number`):
/// let responses = Resumable::new("resp-7").numbering(Numbering::SequenceNumbers);
/// assert_eq!(responses.id(), "resp-7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumable {
    id: String,
    numbering: Numbering,
}

impl Resumable {
    /// Resumable under `id`, its events numbered by SSE `id:` lines ([`Numbering::SseIds`]).
    pub fn new(id: impl Into<String>) -> Self {
        Resumable {
            id: id.into(),
            numbering: Numbering::SseIds,
        }
    }

    /// How its readers see the events' numbers.
    #[must_use]
    pub fn numbering(mut self, numbering: Numbering) -> Self {
        self.numbering = numbering;
        self
    }

    /// The stream's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// How a reader of a resumable stream sees which event is which (so that it can resume after
/// the last one it had), and how it is told that a stream ended other than finished.
///
/// The store numbers the events from 1 either way; this is only what the reader gets.
///
/// ```
/// use tower_llm_stream::resume::Numbering;
///
/// assert_eq!(Numbering::default(), Numbering::SseIds);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Numbering {
    /// Each event with an SSE `id: N` line before it (what a browser's `EventSource` sends
    /// back as `Last-Event-ID`), and the standard error event (`data: {"error": …}`) when
    /// the stream was cancelled, lost or expired: for chat and text completions.
    #[default]
    SseIds,
    /// The events as they are, for a Responses API stream, which numbers its events itself:
    /// event N has `sequence_number` N − 1 (the standard Responses stream counts from 0
    /// without a gap). A cancelled, lost or expired stream ends with an `event: error` with
    /// the next `sequence_number`.
    SequenceNumbers,
}
