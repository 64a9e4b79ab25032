//! [`MemoryStore`]: resumable streams in this process's memory, bounded.

use super::store::{LEASE, Read, StoreError, StoredEvent, StreamState, StreamStore};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Events handed back by one read at most: a reader far behind catches up in batches.
const READ_BATCH: usize = 256;

/// Resumable streams in memory, for one process (the embedded default).
///
/// Bounded: a stream keeps at most [`max_stream_bytes`](Self::max_stream_bytes) of events (16
/// MiB by default; past it, its producer ends it with an error), the store at most
/// [`max_total_bytes`](Self::max_total_bytes) (256 MiB): the oldest finished streams are
/// evicted first, and when only live streams are left a new stream is refused. A stream is
/// forgotten its TTL after its last write.
///
/// ```
/// use bytes::Bytes;
/// use std::time::Duration;
/// use tower_llm_stream::resume::{MemoryStore, StreamState, StreamStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryStore::new();
/// store.create("s1", Duration::from_secs(600)).await.unwrap();
/// store.append("s1", 1, Bytes::from_static(b"data: 1\n\n")).await.unwrap();
/// store.end("s1", StreamState::Finished).await.unwrap();
/// let read = store.read("s1", 0, Duration::ZERO).await.unwrap().unwrap();
/// assert_eq!(read.events.len(), 1);
/// assert_eq!(read.state, StreamState::Finished);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStore {
    shared: Arc<Mutex<Streams>>,
    max_stream_bytes: usize,
    max_total_bytes: usize,
}

#[derive(Debug, Default)]
struct Streams {
    by_id: HashMap<String, Entry>,
    /// Ids in the order their streams ended: the eviction order.
    ended: VecDeque<String>,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    events: Vec<StoredEvent>,
    bytes: usize,
    state: StreamState,
    ttl: Duration,
    lease_until: Instant,
    expires: Instant,
    cancel: bool,
    changed: Arc<Notify>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// The default of [`max_stream_bytes`](MemoryStore::max_stream_bytes): 16 MiB.
    pub const DEFAULT_MAX_STREAM_BYTES: usize = 16 * 1024 * 1024;

    /// The default of [`max_total_bytes`](MemoryStore::max_total_bytes): 256 MiB.
    pub const DEFAULT_MAX_TOTAL_BYTES: usize = 256 * 1024 * 1024;

    /// An empty store with the default bounds.
    #[must_use]
    pub fn new() -> Self {
        MemoryStore {
            shared: Arc::default(),
            max_stream_bytes: Self::DEFAULT_MAX_STREAM_BYTES,
            max_total_bytes: Self::DEFAULT_MAX_TOTAL_BYTES,
        }
    }

    /// The most event bytes one stream keeps.
    ///
    /// ```
    /// let store = tower_llm_stream::resume::MemoryStore::new().max_stream_bytes(1 << 20);
    /// # let _ = store;
    /// ```
    #[must_use]
    pub fn max_stream_bytes(mut self, bytes: usize) -> Self {
        self.max_stream_bytes = bytes;
        self
    }

    /// The most event bytes the store keeps.
    ///
    /// ```
    /// let store = tower_llm_stream::resume::MemoryStore::new().max_total_bytes(64 << 20);
    /// # let _ = store;
    /// ```
    #[must_use]
    pub fn max_total_bytes(mut self, bytes: usize) -> Self {
        self.max_total_bytes = bytes;
        self
    }

    /// How many bytes of events the store holds now.
    ///
    /// ```
    /// assert_eq!(tower_llm_stream::resume::MemoryStore::new().bytes(), 0);
    /// ```
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.shared.lock().expect("the store lock").bytes
    }
}

impl Streams {
    fn forget(&mut self, id: &str) {
        if let Some(entry) = self.by_id.remove(id) {
            self.bytes -= entry.bytes;
            entry.changed.notify_waiters();
        }
    }

    /// Forgets the expired streams, then the oldest ended ones until `room` more bytes fit
    /// under `max`. Whether they fit.
    fn make_room(&mut self, room: usize, max: usize, now: Instant) -> bool {
        let expired: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, e)| e.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.forget(&id);
        }
        while self.bytes + room > max {
            let Some(id) = self.ended.pop_front() else {
                return false;
            };
            // The id may be a new live stream's by now.
            if self.by_id.get(&id).is_some_and(|e| !e.state.is_live()) {
                self.forget(&id);
            }
        }
        true
    }

    fn live(&mut self, id: &str, now: Instant) -> Option<&mut Entry> {
        let entry = self.by_id.get_mut(id)?;
        (entry.expires > now).then_some(entry)
    }
}

impl StreamStore for MemoryStore {
    async fn create(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut streams = self.shared.lock().expect("the store lock");
        if streams.live(id, now).is_some() {
            return Err(StoreError(format!("stream {id:?} exists")));
        }
        if !streams.make_room(0, self.max_total_bytes, now) || streams.bytes >= self.max_total_bytes
        {
            return Err(StoreError(
                "the in-memory store is full of live streams: raise its limit or use Redis".into(),
            ));
        }
        streams.forget(id);
        streams.by_id.insert(
            id.to_owned(),
            Entry {
                events: Vec::new(),
                bytes: 0,
                state: StreamState::Live,
                ttl,
                lease_until: now + LEASE,
                expires: now + ttl,
                cancel: false,
                changed: Arc::default(),
            },
        );
        Ok(())
    }

    async fn append(&self, id: &str, number: u64, frame: Bytes) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut streams = self.shared.lock().expect("the store lock");
        let len = frame.len();
        let entry = streams
            .live(id, now)
            .ok_or_else(|| StoreError(format!("no stream {id:?}")))?;
        if number != entry.events.len() as u64 + 1 {
            return Err(StoreError(format!(
                "event {number} of {id:?} out of order: {} stored",
                entry.events.len()
            )));
        }
        if entry.bytes + len > self.max_stream_bytes {
            return Err(StoreError(format!(
                "stream {id:?} is larger than the store's limit of {} bytes",
                self.max_stream_bytes
            )));
        }
        entry.events.push(StoredEvent { number, frame });
        entry.bytes += len;
        entry.expires = now + entry.ttl;
        entry.changed.notify_waiters();
        streams.bytes += len;
        Ok(())
    }

    async fn heartbeat(&self, id: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut streams = self.shared.lock().expect("the store lock");
        let entry = streams
            .live(id, now)
            .ok_or_else(|| StoreError(format!("no stream {id:?}")))?;
        entry.lease_until = now + LEASE;
        Ok(entry.cancel)
    }

    async fn end(&self, id: &str, state: StreamState) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut streams = self.shared.lock().expect("the store lock");
        let entry = streams
            .live(id, now)
            .ok_or_else(|| StoreError(format!("no stream {id:?}")))?;
        entry.state = state;
        entry.expires = now + entry.ttl;
        entry.changed.notify_waiters();
        streams.ended.push_back(id.to_owned());
        Ok(())
    }

    async fn cancel(&self, id: &str) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut streams = self.shared.lock().expect("the store lock");
        Ok(match streams.live(id, now) {
            Some(entry) => {
                entry.cancel = true;
                entry.changed.notify_waiters();
                true
            }
            None => false,
        })
    }

    async fn read(&self, id: &str, after: u64, wait: Duration) -> Result<Option<Read>, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = {
                let now = Instant::now();
                let mut streams = self.shared.lock().expect("the store lock");
                let Some(entry) = streams.live(id, now) else {
                    return Ok(None);
                };
                // A reader that claims more events than there are gets none until there are
                // more than it claims.
                let len = entry.events.len();
                let from = usize::try_from(after).unwrap_or(usize::MAX);
                let (from, to) = if from >= len {
                    (len, len)
                } else {
                    (from, len.min(from + READ_BATCH))
                };
                let mut state = entry.state;
                if state.is_live() && entry.lease_until <= now {
                    state = StreamState::ProducerLost;
                }
                if to > from || !state.is_live() || now >= deadline {
                    let all = to == entry.events.len();
                    return Ok(Some(Read {
                        events: entry.events[from..to].to_vec(),
                        state: if all { state } else { StreamState::Live },
                    }));
                }
                // Registered before the lock is let go: no append is missed.
                let mut notified = Box::pin(entry.changed.clone().notified_owned());
                notified.as_mut().enable();
                notified
            };
            // Woken by a write, or at the deadline; at the latest when the lease runs out.
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}
