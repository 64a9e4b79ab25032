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
#[cfg(feature = "redis")]
mod redis_store;
mod service;
pub mod store;

pub use self::body::ResumeBody;
pub use self::layer::ResumeLayer;
pub use self::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use self::redis_store::RedisStore;
pub use self::service::{Resume, ResumeResponseBody};
pub use self::store::{Read, StoreError, StoredEvent, StreamState, StreamStore};

/// A request extension: make this request's stream resumable under this id (unique per
/// stream; the application makes it, e.g. a random UUID, and hands it to its client).
///
/// ```
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(tower_llm_stream::resume::Resumable::new("stream-7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumable(pub String);

impl Resumable {
    /// Resumable under `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Resumable(id.into())
    }
}
