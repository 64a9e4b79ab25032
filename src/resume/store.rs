//! Where resumable streams live: the [`StreamStore`] trait and what it hands back.

use bytes::Bytes;
use std::future::Future;
use std::time::Duration;

/// One stored event: its number in the stream (from 1) and its frame, byte for byte as the
/// client got it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// 1 for the first event of the stream, then one more for each.
    pub number: u64,
    /// The event's frame (one whole SSE block).
    pub frame: Bytes,
}

/// Where a stored stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamState {
    /// Its producer is running, and renewing its lease.
    Live,
    /// Its producer stored the last event: nothing more will come.
    Finished,
    /// Stopped by a cancel request: nothing more will come.
    Cancelled,
    /// Its producer stopped renewing its lease (its process died): nothing more will come.
    ProducerLost,
    /// Its producer could not store an event (the store's limit, the store unreachable):
    /// nothing more will come.
    Failed,
}

impl StreamState {
    /// Whether more events may come.
    #[must_use]
    pub fn is_live(self) -> bool {
        self == StreamState::Live
    }
}

/// What one read gives: the events after the one asked for (possibly none), and the state of
/// the stream after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The events, in order, without a gap.
    pub events: Vec<StoredEvent>,
    /// The state of the stream once these events are read: when it is not
    /// [`Live`](StreamState::Live), they are the last.
    pub state: StreamState,
}

/// A store failure (Redis unreachable, a full store).
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stream store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// How long a producer's lease lasts without a renewal, and how often it renews it: a
/// reader learns that a producer died ([`StreamState::ProducerLost`]) at most this long
/// after its last renewal.
pub const LEASE: Duration = Duration::from_secs(10);

/// How often a producer renews its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Where resumable streams are kept so that any reader, on this process or another, can
/// read a stream from any event on: [`MemoryStore`](super::MemoryStore) for one process,
/// a Redis-backed store (feature `redis`) for replicas sharing a Redis.
///
/// One producer writes a stream (`create`, `append` in order, `heartbeat`, `end`); any
/// number of readers `read` it. Every stream is kept for its TTL after its last write.
pub trait StreamStore: Clone + Send + Sync + Unpin + 'static {
    /// Starts a stream kept for `ttl` after its last write, its producer's lease running.
    /// Fails when the id is taken.
    fn create(
        &self,
        id: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores the stream's next event (`number` is one more than the last one's).
    fn append(
        &self,
        id: &str,
        number: u64,
        frame: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Renews the producer's lease; tells whether a cancel was asked for meanwhile.
    fn heartbeat(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends the stream: [`Finished`](StreamState::Finished) or
    /// [`Cancelled`](StreamState::Cancelled).
    fn end(
        &self,
        id: &str,
        state: StreamState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Asks the producer to stop (it learns it at its next heartbeat, within [`HEARTBEAT`]);
    /// `false` when there is no such stream.
    fn cancel(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The events after number `after` (0: from the first), waiting up to `wait` for at
    /// least one when none is there yet and the stream is live. `None`: no such stream (never
    /// was, or expired).
    fn read(
        &self,
        id: &str,
        after: u64,
        wait: Duration,
    ) -> impl Future<Output = Result<Option<Read>, StoreError>> + Send;
}
