//! [`RedisStore`]: resumable streams in Redis, shared by every replica that reaches it
//! (feature `redis`). The data model and the connections are in its docs.

use super::store::{LEASE, Read, StoreError, StoredEvent, StreamState, StreamStore};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::{AsyncConnectionConfig, Client, RedisError, Script, Value};
use bytes::Bytes;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Events handed back by one read at most: a reader far behind catches up in batches.
const READ_BATCH: usize = 256;

/// How long a command may take before its connection is taken for lost.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Starts a stream. KEYS: meta, events, lease. ARGV: ttl ms, lease ms. 1, or 0 when it exists.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HSETNX', KEYS[1], 'state', 'live') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'cancel', '0', 'ttl', ARGV[1], 'last', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
return 1
",
    )
});

/// Stores an event. KEYS: meta, events. ARGV: number, frame, cap.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local m = redis.call('HMGET', KEYS[1], 'state', 'last', 'ttl')
if not m[1] then return redis.error_reply('TLS_NOSTREAM') end
if m[1] ~= 'live' then return redis.error_reply('TLS_ENDED ' .. m[1]) end
if ARGV[1] ~= tostring(tonumber(m[2]) + 1) then return redis.error_reply('TLS_ORDER ' .. m[2]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '0-' .. ARGV[1], 'data', ARGV[2])
redis.call('HSET', KEYS[1], 'last', ARGV[1])
redis.call('PEXPIRE', KEYS[2], m[3])
redis.call('PEXPIRE', KEYS[1], m[3])
return 1
",
    )
});

/// Renews the lease. KEYS: meta, lease. ARGV: lease ms. The cancel flag.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local c = redis.call('HGET', KEYS[1], 'cancel')
if not c then return redis.error_reply('TLS_NOSTREAM') end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return tonumber(c)
",
    )
});

/// Ends a stream and wakes its readers. KEYS: meta, events, lease. ARGV: state.
static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local m = redis.call('HMGET', KEYS[1], 'state', 'last', 'ttl')
if not m[1] then return redis.error_reply('TLS_NOSTREAM') end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
if m[1] == 'live' then
  redis.call('XADD', KEYS[2], '0-' .. tostring(tonumber(m[2]) + 1), 'end', ARGV[1])
end
redis.call('PEXPIRE', KEYS[2], m[3])
redis.call('PEXPIRE', KEYS[1], m[3])
redis.call('DEL', KEYS[3])
return 1
",
    )
});

/// Asks for a cancel. KEYS: meta. 1, or 0 when there is no such stream.
static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'cancel', '1')
return 1
",
    )
});

/// Resumable streams in Redis, on Redis Streams: every replica connected to the same Redis can
/// read (and cancel) any stream, whichever replica produces it.
///
/// Cloning is cheap: the clones share the connections.
///
/// # Data model
///
/// A stream `ID` (1 to [`MAX_ID_LEN`](Self::MAX_ID_LEN) characters of `A-Z a-z 0-9 - _ . :`,
/// checked before any key is made, so that a client's id cannot reach another key) has three
/// keys, all in one cluster hash slot through the hash tag `{ID}`:
///
/// - `tls:{ID}:events`, a Redis Stream: event `N` is the entry of id `0-N` (added by
///   `XADD tls:{ID}:events MAXLEN ~ CAP 0-N data FRAME`), so `XREAD STREAMS tls:{ID}:events
///   0-AFTER` gives exactly the events after `AFTER`, in order, with no gap and no duplicate,
///   whoever reads. When the stream ends, one more entry `0-(LAST+1)` with a field `end` (no
///   `data`) wakes the readers blocked on it at once; it is not an event.
/// - `tls:{ID}:meta`, a hash: `state` (`live`, `finished`, `cancelled`, `failed`), `cancel`
///   (`0` or `1`), `ttl` (milliseconds) and `last` (the last event's number).
/// - `tls:{ID}:lease`, a string set with `PX` for the lease ([`LEASE`] by default), renewed by
///   every heartbeat and deleted at the end: a live stream without it has lost its producer
///   ([`StreamState::ProducerLost`]).
///
/// Every key has a TTL: the events and the meta get the stream's TTL again at each write
/// (create, append, end), the lease its own. Writes are Lua scripts, one round trip each and
/// atomic (`create` fails when the meta exists, `append` checks the number follows the last).
///
/// A stream keeps its last [`max_stream_events`](RedisStore::max_stream_events) events
/// (`MAXLEN ~`: a few more): a stream longer than that goes on, and a reader that resumes from
/// before its oldest kept event gets an error instead of a gap.
///
/// A reader learns that a producer died when its lease key is gone: at most the lease plus a
/// read's wait after the producer's last heartbeat.
///
/// # Connections
///
/// Writes and reads that do not wait share one multiplexed connection (reconnected when it
/// drops). A read that has to wait for the next event sends `XREAD BLOCK`, which holds the
/// connection it is sent on until it returns: on the shared connection it would hold up every
/// other command of the process behind it for up to the read's wait. So each waiting read
/// takes a connection of its own from a pool, at most
/// [`max_waiting_reads`](RedisStore::max_waiting_reads) at once, and gives it back when its
/// read returns (the pool keeps as many as may wait at once: connections are opened as
/// concurrent reads need them, not once per read).
///
/// The store talks to one Redis (a standalone server or a primary; `rediss://` is not
/// supported): there is no Cluster client, though a stream's keys already share a slot.
///
/// # Example
///
/// ```no_run
/// use bytes::Bytes;
/// use std::time::Duration;
/// use tower_llm_stream::resume::{RedisStore, ResumeLayer, StreamState, StreamStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower_llm_stream::resume::StoreError> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
/// store.create("s1", Duration::from_secs(600)).await?;
/// store.append("s1", 1, Bytes::from_static(b"data: 1\n\n")).await?;
/// store.end("s1", StreamState::Finished).await?;
/// let read = store.read("s1", 0, Duration::ZERO).await?.unwrap();
/// assert_eq!(read.events.len(), 1);
/// assert_eq!(read.state, StreamState::Finished);
///
/// // As the store of a layer:
/// let layer = ResumeLayer::new(store);
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
    /// The connections of waiting reads: at most as many as the semaphore's permits.
    waiting: Arc<Waiting>,
    max_stream_events: u64,
    lease: Duration,
}

struct Shared {
    client: Client,
    manager: ConnectionManager,
    /// The URL without its password, for messages.
    url: String,
}

struct Waiting {
    permits: Semaphore,
    /// Connections whose read returned, for the next reads; at most `max`, as many as may
    /// wait at once: a connection given back is never closed for want of room while reads
    /// wait (opening one per read cost 2,000-6,000 connections per 4.5 s at 256 tails, and
    /// a p99 of 6-16 ms).
    idle: Mutex<Vec<MultiplexedConnection>>,
    max: usize,
}

impl Waiting {
    fn new(max: usize, idle: Vec<MultiplexedConnection>) -> Self {
        let max = max.max(1);
        Waiting {
            permits: Semaphore::new(max),
            idle: Mutex::new(idle),
            max,
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shared.url)
            .field("max_stream_events", &self.max_stream_events)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// The default of [`RedisStore::max_stream_events`].
const DEFAULT_MAX_STREAM_EVENTS: u64 = 100_000;

/// The default of [`RedisStore::max_waiting_reads`].
const DEFAULT_MAX_WAITING_READS: usize = 512;

impl RedisStore {
    /// The longest stream id a `RedisStore` takes (ids are 1 to this many characters of
    /// `A-Z a-z 0-9 - _ . :`).
    ///
    /// ```
    /// assert_eq!(tower_llm_stream::resume::RedisStore::MAX_ID_LEN, 200);
    /// ```
    pub const MAX_ID_LEN: usize = 200;

    /// Connects to the Redis at `url` (`redis://[:PASSWORD@]HOST:PORT[/DB]`, or
    /// `redis+unix:///PATH`), and checks that it answers.
    ///
    /// # Errors
    ///
    /// A URL that is not one, a Redis that cannot be reached or refuses the connection (a
    /// password missing or wrong): the message says what to check.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = tower_llm_stream::resume::RedisStore::connect("redis://127.0.0.1:6379").await;
    /// if let Err(e) = &store {
    ///     eprintln!("{e}");
    /// }
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let shown = redact(url);
        let client = Client::open(url).map_err(|e| {
            StoreError(format!(
                "{shown} is not a Redis URL this store takes ({e}): expected redis://HOST:PORT \
                 (--redis-url)"
            ))
        })?;
        let unreachable = |e: RedisError| describe(&shown, "connecting", &e);
        // A first connection of the waiting reads' pool, and the check that Redis answers:
        // the connection manager would retry for seconds before it tells.
        let mut first = client
            .get_multiplexed_async_connection_with_config(&waiting_config())
            .await
            .map_err(unreachable)?;
        ::redis::cmd("PING")
            .query_async::<()>(&mut first)
            .await
            .map_err(unreachable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(3);
        let manager = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(unreachable)?;
        Ok(RedisStore {
            shared: Arc::new(Shared {
                client,
                manager,
                url: shown,
            }),
            waiting: Arc::new(Waiting::new(DEFAULT_MAX_WAITING_READS, vec![first])),
            max_stream_events: DEFAULT_MAX_STREAM_EVENTS,
            lease: LEASE,
        })
    }

    /// How many events of a stream Redis keeps, its newest (100,000 by default; `XADD MAXLEN
    /// ~`, so a few more). A longer stream goes on; a reader resuming from before its oldest
    /// kept event gets an error.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = tower_llm_stream::resume::RedisStore::connect("redis://127.0.0.1:6379")
    ///     .await
    ///     .unwrap()
    ///     .max_stream_events(20_000);
    /// # let _ = store;
    /// # }
    /// ```
    #[must_use]
    pub fn max_stream_events(mut self, events: u64) -> Self {
        self.max_stream_events = events.max(1);
        self
    }

    /// How long a producer's lease lasts without a heartbeat ([`LEASE`] by default): how soon
    /// readers learn that a producer died. Keep it well above
    /// [`HEARTBEAT`](super::store::HEARTBEAT); a shorter one is for tests.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = tower_llm_stream::resume::RedisStore::connect("redis://127.0.0.1:6379")
    ///     .await
    ///     .unwrap()
    ///     .lease(std::time::Duration::from_secs(20));
    /// # let _ = store;
    /// # }
    /// ```
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How many reads may wait for a stream's next event at once (512 by default): each waits
    /// on a connection of its own (`XREAD BLOCK`); past that, a read waits for one of them to
    /// return. Redis takes 10,000 clients by default (`maxclients`).
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = tower_llm_stream::resume::RedisStore::connect("redis://127.0.0.1:6379")
    ///     .await
    ///     .unwrap()
    ///     .max_waiting_reads(2_000);
    /// # let _ = store;
    /// # }
    /// ```
    #[must_use]
    pub fn max_waiting_reads(mut self, reads: usize) -> Self {
        let idle = std::mem::take(&mut *self.waiting.idle.lock().expect("the pool lock"));
        self.waiting = Arc::new(Waiting::new(reads, idle));
        self
    }

    fn error(&self, what: &str, e: &RedisError) -> StoreError {
        describe(&self.shared.url, what, e)
    }

    fn manager(&self) -> ConnectionManager {
        self.shared.manager.clone()
    }

    /// Runs a write script, and makes its errors `StoreError`s naming the stream. A write
    /// that may run twice is sent again once when the connection fails (Redis restarted or
    /// failed over: the connection manager reconnects meanwhile).
    async fn write(
        &self,
        script: &Script,
        id: &str,
        keys: &[Key],
        args: &[&[u8]],
        (what, retry): (&str, Retry),
    ) -> Result<i64, StoreError> {
        let keys_of = Keys::of(id).ok_or_else(|| bad_id(id))?;
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(keys_of.get(*key));
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut conn = self.manager();
        let mut again = false;
        let e = loop {
            match invocation.invoke_async::<i64>(&mut conn).await {
                Ok(reply) => return Ok(reply),
                Err(e) if !again && !matches!(retry, Retry::No) && is_connection_error(&e) => {
                    again = true;
                }
                Err(e) => break e,
            }
        };
        let detail = e.detail().unwrap_or("?");
        Err(match e.code() {
            // The first try was stored, its reply lost.
            Some("TLS_ORDER")
                if again && matches!(retry, Retry::Append(n) if detail.parse() == Ok(n)) =>
            {
                return Ok(1);
            }
            Some("TLS_NOSTREAM") => StoreError(format!("no stream {id:?}")),
            Some("TLS_ENDED") => StoreError(format!("stream {id:?} has ended ({detail})")),
            Some("TLS_ORDER") => {
                StoreError(format!("event out of order for {id:?}: {detail} stored"))
            }
            _ => self.error(what, &e),
        })
    }

    /// One read: the events after `after`, with the state after them; `BLOCK`ing up to
    /// `block` on `conn` when given.
    async fn read_once(
        &self,
        keys: &Keys,
        after: u64,
        block: Option<(Duration, &mut MultiplexedConnection)>,
    ) -> Result<Option<Read>, ReadError> {
        let mut pipe = ::redis::pipe();
        let xread = pipe.cmd("XREAD").arg("COUNT").arg(READ_BATCH);
        if let Some((wait, _)) = &block {
            xread
                .arg("BLOCK")
                .arg(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        xread
            .arg("STREAMS")
            .arg(&keys.events)
            .arg(format!("0-{after}"));
        // After the XREAD on the same connection: run once it returns, so that a state read
        // here is the one after the events it gave.
        pipe.cmd("HMGET").arg(&keys.meta).arg("state").arg("last");
        pipe.cmd("EXISTS").arg(&keys.lease);
        let reply: Vec<Value> = match block {
            Some((_, conn)) => pipe.query_async(conn).await?,
            None => pipe.query_async(&mut self.manager()).await?,
        };
        let [xread, meta, lease] = <[Value; 3]>::try_from(reply).map_err(|_| unexpected())?;
        let Value::Array(meta) = meta else {
            return Err(unexpected().into());
        };
        let mut meta = meta.into_iter();
        let Some(state) = meta.next().and_then(text) else {
            // No such stream, or expired.
            return Ok(None);
        };
        let last: u64 = meta
            .next()
            .and_then(text)
            .and_then(|last| last.parse().ok())
            .ok_or_else(unexpected)?;
        let lease = matches!(lease, Value::Int(1));
        let events = entries(xread, after)?;
        let seen = events.last().map_or(after, |e| e.number);
        // Whether these events are the last ones stored when the state was read.
        let all = seen >= last;
        let state = match state.as_str() {
            "live" if !lease && all => StreamState::ProducerLost,
            _ if !all => StreamState::Live,
            "live" => StreamState::Live,
            "finished" => StreamState::Finished,
            "cancelled" => StreamState::Cancelled,
            _ => StreamState::Failed,
        };
        Ok(Some(Read { events, state }))
    }

    /// A connection for a waiting read: an idle one (`true`), or a new one.
    async fn waiting_connection(&self) -> Result<(MultiplexedConnection, bool), RedisError> {
        let idle = self.waiting.idle.lock().expect("the pool lock").pop();
        match idle {
            Some(conn) => Ok((conn, true)),
            None => Ok((
                self.shared
                    .client
                    .get_multiplexed_async_connection_with_config(&waiting_config())
                    .await?,
                false,
            )),
        }
    }
}

/// The connections of waiting reads: no response timeout (a `BLOCK` is as long as its read's
/// wait; the read bounds it itself).
fn waiting_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(None)
}

/// Whether a write may be sent again when its connection fails.
#[derive(Clone, Copy)]
enum Retry {
    No,
    /// It does the same twice.
    Yes,
    /// An append of this event number: stored already when a second try finds it the last.
    Append(u64),
}

#[derive(Clone, Copy)]
enum Key {
    Meta,
    Events,
    Lease,
}

/// A stream's keys.
struct Keys {
    meta: String,
    events: String,
    lease: String,
}

impl Keys {
    /// The keys of stream `id`; `None` for an id that cannot be one.
    fn of(id: &str) -> Option<Keys> {
        let valid = !id.is_empty()
            && id.len() <= RedisStore::MAX_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        valid.then(|| Keys {
            meta: format!("tls:{{{id}}}:meta"),
            events: format!("tls:{{{id}}}:events"),
            lease: format!("tls:{{{id}}}:lease"),
        })
    }

    fn get(&self, key: Key) -> &str {
        match key {
            Key::Meta => &self.meta,
            Key::Events => &self.events,
            Key::Lease => &self.lease,
        }
    }
}

fn bad_id(id: &str) -> StoreError {
    StoreError(format!(
        "stream id {id:?} cannot be stored in Redis: 1 to {} characters of A-Z a-z 0-9 - _ . :",
        RedisStore::MAX_ID_LEN
    ))
}

fn millis(duration: Duration) -> Vec<u8> {
    // PEXPIRE 0 would delete the key at once.
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
        .to_string()
        .into_bytes()
}

fn state_name(state: StreamState) -> &'static [u8] {
    match state {
        StreamState::Live => b"live",
        StreamState::Finished => b"finished",
        StreamState::Cancelled => b"cancelled",
        StreamState::ProducerLost | StreamState::Failed => b"failed",
    }
}

/// Why a read failed.
#[derive(Debug)]
enum ReadError {
    Redis(RedisError),
    /// The events after `after` are trimmed: the oldest kept is `oldest`.
    Trimmed {
        after: u64,
        oldest: u64,
    },
}

impl From<RedisError> for ReadError {
    fn from(e: RedisError) -> Self {
        ReadError::Redis(e)
    }
}

impl ReadError {
    fn into_store_error(self, url: &str) -> StoreError {
        match self {
            ReadError::Redis(e) => describe(url, "reading a stream", &e),
            ReadError::Trimmed { after, oldest } => StoreError(format!(
                "the events after {after} are no longer kept (a stream keeps its newest \
                 max_stream_events; the oldest kept is {oldest}): start a new request"
            )),
        }
    }
}

fn unexpected() -> RedisError {
    RedisError::from((
        ::redis::ErrorKind::UnexpectedReturnType,
        "an XREAD or HMGET reply of an unexpected shape",
    ))
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        _ => None,
    }
}

/// The events of an `XREAD` reply (RESP2 or RESP3) of one stream, leaving out the end marker.
/// An error when the first one is not right after `after`: the events between were trimmed.
fn entries(reply: Value, after: u64) -> Result<Vec<StoredEvent>, ReadError> {
    let stream = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(mut streams) if streams.len() == 1 => match streams.pop() {
            Some(Value::Array(pair)) => pair.into_iter().nth(1),
            _ => None,
        },
        Value::Map(mut streams) if streams.len() == 1 => streams.pop().map(|(_, v)| v),
        _ => None,
    };
    let Some(Value::Array(items)) = stream else {
        return Err(unexpected().into());
    };
    let mut events = Vec::with_capacity(items.len());
    for (expected, item) in (after + 1..).zip(items) {
        let Value::Array(item) = item else {
            return Err(unexpected().into());
        };
        let [id, fields] = <[Value; 2]>::try_from(item).map_err(|_| unexpected())?;
        let number = text(id)
            .and_then(|id| id.strip_prefix("0-").and_then(|n| n.parse::<u64>().ok()))
            .ok_or_else(unexpected)?;
        if number != expected {
            return Err(ReadError::Trimmed {
                after,
                oldest: number,
            });
        }
        let fields = match fields {
            Value::Array(fields) => fields,
            Value::Map(fields) => fields.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => return Err(unexpected().into()),
        };
        let mut fields = fields.into_iter();
        match (fields.next().and_then(text).as_deref(), fields.next()) {
            (Some("data"), Some(Value::BulkString(frame))) => events.push(StoredEvent {
                number,
                frame: Bytes::from(frame),
            }),
            // The end marker: the last entry.
            (Some("end"), _) => break,
            _ => return Err(unexpected().into()),
        }
    }
    Ok(events)
}

/// The URL without a password.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..scheme_end + 3], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

fn is_connection_error(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped()
}

/// A Redis error as a [`StoreError`] that says what to check.
fn describe(url: &str, what: &str, e: &RedisError) -> StoreError {
    let message = if is_connection_error(e) {
        format!("cannot reach Redis at {url} ({what}: {e}): is redis-server running? (--redis-url)")
    } else {
        match e.code() {
            Some("NOAUTH" | "WRONGPASS") => format!(
                "Redis at {url} refused {what} ({e}): give its password in the URL, \
                 redis://:PASSWORD@HOST:PORT (--redis-url)"
            ),
            Some("NOPERM") => format!(
                "Redis at {url} refused {what} ({e}): its user needs the stream, hash, string and \
                 script commands on the keys tls:*"
            ),
            Some("OOM") => format!(
                "Redis at {url} is out of memory ({what}: {e}): raise its maxmemory, or keep \
                 streams for a shorter TTL"
            ),
            Some("READONLY") => format!(
                "Redis at {url} is a read-only replica ({what}: {e}): point --redis-url at the primary"
            ),
            _ => format!(
                "Redis at {url} failed {what} ({e}): streams need Redis 5 or later, with scripting"
            ),
        }
    };
    StoreError(message)
}

impl StreamStore for RedisStore {
    async fn create(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        let created = self
            .write(
                &CREATE,
                id,
                &[Key::Meta, Key::Events, Key::Lease],
                &[&millis(ttl), &millis(self.lease)],
                ("creating a stream", Retry::No),
            )
            .await?;
        if created == 0 {
            return Err(StoreError(format!("stream {id:?} exists")));
        }
        Ok(())
    }

    async fn append(&self, id: &str, number: u64, frame: Bytes) -> Result<(), StoreError> {
        self.write(
            &APPEND,
            id,
            &[Key::Meta, Key::Events],
            &[
                number.to_string().as_bytes(),
                &frame,
                self.max_stream_events.to_string().as_bytes(),
            ],
            ("storing an event", Retry::Append(number)),
        )
        .await
        .map(drop)
    }

    async fn heartbeat(&self, id: &str) -> Result<bool, StoreError> {
        let cancel = self
            .write(
                &HEARTBEAT,
                id,
                &[Key::Meta, Key::Lease],
                &[&millis(self.lease)],
                ("renewing a lease", Retry::Yes),
            )
            .await?;
        Ok(cancel == 1)
    }

    async fn end(&self, id: &str, state: StreamState) -> Result<(), StoreError> {
        self.write(
            &END,
            id,
            &[Key::Meta, Key::Events, Key::Lease],
            &[state_name(state)],
            ("ending a stream", Retry::Yes),
        )
        .await
        .map(drop)
    }

    async fn cancel(&self, id: &str) -> Result<bool, StoreError> {
        if Keys::of(id).is_none() {
            return Ok(false);
        }
        let cancelled = self
            .write(
                &CANCEL,
                id,
                &[Key::Meta],
                &[],
                ("cancelling a stream", Retry::Yes),
            )
            .await?;
        Ok(cancelled == 1)
    }

    async fn read(&self, id: &str, after: u64, wait: Duration) -> Result<Option<Read>, StoreError> {
        let deadline = Instant::now() + wait;
        let Some(keys) = Keys::of(id) else {
            return Ok(None);
        };
        let url = &self.shared.url;
        // First without waiting, on the shared connection: what is there, or an unknown id,
        // an ended stream, a lost producer, at once.
        let read = match self.read_once(&keys, after, None).await {
            // Once more when the shared connection failed: the manager reconnects meanwhile.
            Err(ReadError::Redis(e)) if is_connection_error(&e) => {
                self.read_once(&keys, after, None).await
            }
            read => read,
        }
        .map_err(|e| e.into_store_error(url))?;
        match &read {
            Some(read) if read.events.is_empty() && read.state.is_live() && !wait.is_zero() => {}
            _ => return Ok(read),
        }
        let Ok(permit) = tokio::time::timeout_at(deadline, self.waiting.permits.acquire()).await
        else {
            return Ok(read);
        };
        let _permit = permit.expect("the semaphore is never closed");
        // An XREAD BLOCK after the read above: an event stored meanwhile has a number after
        // `after`, so it is returned at once; an end meanwhile added its marker, likewise.
        let mut retried = false;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(read);
            }
            let (mut conn, pooled) = self
                .waiting_connection()
                .await
                .map_err(|e| describe(url, "connecting for a read", &e))?;
            let reply = tokio::time::timeout(
                remaining + RESPONSE_TIMEOUT,
                self.read_once(&keys, after, Some((remaining, &mut conn))),
            )
            .await;
            match reply {
                Ok(Ok(read)) => {
                    // Back to the pool only when its reply came: a connection dropped with a
                    // BLOCK in flight (this future dropped, a timeout) is closed, and Redis
                    // forgets the BLOCK.
                    let mut idle = self.waiting.idle.lock().expect("the pool lock");
                    if idle.len() < self.waiting.max {
                        idle.push(conn);
                    }
                    return Ok(read);
                }
                // A pooled connection that Redis closed meanwhile (its `timeout`, a restart):
                // once more on a new one.
                Ok(Err(ReadError::Redis(e))) if pooled && !retried && is_connection_error(&e) => {
                    retried = true;
                }
                Ok(Err(e)) => return Err(e.into_store_error(url)),
                Err(_) => {
                    return Err(StoreError(format!(
                        "Redis at {url} did not answer a read within {:?}: is it overloaded?",
                        remaining + RESPONSE_TIMEOUT
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_make_keys_of_one_slot_or_none() {
        let keys = Keys::of("resp_01J:abc-1.2").unwrap();
        assert_eq!(keys.events, "tls:{resp_01J:abc-1.2}:events");
        assert_eq!(keys.meta, "tls:{resp_01J:abc-1.2}:meta");
        assert_eq!(keys.lease, "tls:{resp_01J:abc-1.2}:lease");
        for bad in [
            "",
            "a}b",
            "a{b",
            "a b",
            "a*",
            "é",
            "a\r\nDEL x",
            &"x".repeat(201),
        ] {
            assert!(Keys::of(bad).is_none(), "{bad:?}");
        }
        assert!(Keys::of(&"x".repeat(200)).is_some());
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://:secret@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(redact("redis://user:p@ss@host/1"), "redis://***@host/1");
    }

    #[test]
    fn an_xread_reply_gives_its_events_without_the_end_marker() {
        let entry = |n: u64, field: &str, value: &[u8]| {
            Value::Array(vec![
                Value::BulkString(format!("0-{n}").into_bytes()),
                Value::Array(vec![
                    Value::BulkString(field.as_bytes().to_vec()),
                    Value::BulkString(value.to_vec()),
                ]),
            ])
        };
        let reply = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"tls:{s}:events".to_vec()),
            Value::Array(vec![
                entry(3, "data", b"data: 3\n\n"),
                entry(4, "data", b"\xff\0"),
                entry(5, "end", b"finished"),
            ]),
        ])]);
        let events = entries(reply.clone(), 2).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].number, 4);
        assert_eq!(&events[1].frame[..], b"\xff\0");
        // Event 2 missing: trimmed, an error rather than a gap.
        let Err(e) = entries(reply, 1) else {
            panic!("a gap read as events")
        };
        assert!(e.into_store_error("redis://x").0.contains("no longer kept"));
        assert!(entries(Value::Nil, 7).unwrap().is_empty());
    }
}
