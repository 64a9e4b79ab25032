//! Resumable streams (`--resumable`): the proxy's side of the library's
//! [`resume`](tower_llm_stream::resume) module, for chat and text completions.
//!
//! A streamed request sent with `x-resumable: 1` gets a stream id (`x-stream-id`, 128 random
//! bits in hex) and every event an `id: N`; its stream runs to its end in a task of its own,
//! whether its client stays or not, into the [`Store`]. `GET /v1/streams/{id}` with
//! `Last-Event-ID: N` (what a browser's `EventSource` sends when it reconnects; also
//! `?last_event_id=N`) reads the events after N, then the rest as they come; `DELETE
//! /v1/streams/{id}` stops the stream and its upstream request.
//!
//! The proxy reaches its store only through [`Store`], one type for whichever store the
//! command line picks: the in-memory store of this process, or (`--redis-url`) a Redis shared
//! by replicas, so that a stream started on one proxy resumes on any other.

use crate::util::{ProxyBody, error, json};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use std::time::Duration;
use tower_llm_stream::resume::{
    MemoryStore, Producers, Read, RedisStore, ResumeBody, StoreError, StreamState, StreamStore,
};

/// The request header that asks for a resumable stream: `x-resumable: 1`.
pub static RESUMABLE: HeaderName = HeaderName::from_static("x-resumable");

/// The response header that names a resumable stream: what `GET /v1/streams/{id}` takes.
pub static STREAM_ID: HeaderName = HeaderName::from_static("x-stream-id");

/// Where resumable streams are read back: `/v1/streams/{id}`.
pub const STREAMS_PATH: &str = "/v1/streams/";

/// What the refusals say when the proxy was started without `--resumable`.
pub const OFF: &str = "resumable streams are off: start the proxy with --resumable to use x-resumable and /v1/streams";

/// Resumable streams as configured (`--resumable`, `--resume-ttl`): where they are kept and
/// for how long. Clones share the store: every worker thread reads the streams of the others.
#[derive(Debug, Clone)]
pub struct ResumeConfig {
    /// Where the streams are kept.
    pub store: Store,
    /// How long a stream stays readable after its last event (`--resume-ttl`, 600 s).
    pub ttl: Duration,
}

impl ResumeConfig {
    /// The default TTL of `--resume-ttl`.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

    /// Streams kept in this process's memory for `ttl` after their last event.
    pub fn memory(ttl: Duration) -> Self {
        ResumeConfig {
            store: Store::Memory(MemoryStore::new()),
            ttl,
        }
    }
}

/// The store of the proxy's resumable streams: one type whichever the command line picked,
/// implementing [`StreamStore`] by handing each call to it.
///
/// [`Store::Redis`] with `--redis-url` (connected by `cli::run`, on each worker thread's
/// runtime: a Redis connection lives on the runtime that made it), else [`Store::Memory`].
#[derive(Debug, Clone)]
pub enum Store {
    /// This process's memory (`MemoryStore`): streams are resumable on this process only, and
    /// lost when it exits.
    Memory(MemoryStore),
    /// A Redis (`--redis-url`, the library's `RedisStore`): streams are resumable on every
    /// proxy that shares it, and outlive the proxy that started them (its readers get the
    /// `stream_producer_lost` error event when it dies mid-stream).
    Redis(RedisStore),
}

impl StreamStore for Store {
    async fn create(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        match self {
            Store::Memory(store) => store.create(id, ttl).await,
            Store::Redis(store) => store.create(id, ttl).await,
        }
    }

    async fn append(&self, id: &str, number: u64, frame: Bytes) -> Result<(), StoreError> {
        match self {
            Store::Memory(store) => store.append(id, number, frame).await,
            Store::Redis(store) => store.append(id, number, frame).await,
        }
    }

    async fn heartbeat(&self, id: &str) -> Result<bool, StoreError> {
        match self {
            Store::Memory(store) => store.heartbeat(id).await,
            Store::Redis(store) => store.heartbeat(id).await,
        }
    }

    async fn end(&self, id: &str, state: StreamState) -> Result<(), StoreError> {
        match self {
            Store::Memory(store) => store.end(id, state).await,
            Store::Redis(store) => store.end(id, state).await,
        }
    }

    async fn cancel(&self, id: &str) -> Result<bool, StoreError> {
        match self {
            Store::Memory(store) => store.cancel(id).await,
            Store::Redis(store) => store.cancel(id).await,
        }
    }

    async fn read(&self, id: &str, after: u64, wait: Duration) -> Result<Option<Read>, StoreError> {
        match self {
            Store::Memory(store) => store.read(id, after, wait).await,
            Store::Redis(store) => store.read(id, after, wait).await,
        }
    }
}

/// A new stream id: 128 bits from the operating system's random source, in hex (32
/// characters), so that nobody can guess another client's stream.
pub fn new_id() -> String {
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits).expect("the operating system's random source");
    let mut id = String::with_capacity(32);
    for byte in bits {
        id.push(char::from_digit(u32::from(byte >> 4), 16).expect("a hex digit"));
        id.push(char::from_digit(u32::from(byte & 0xf), 16).expect("a hex digit"));
    }
    id
}

/// Whether `id` can be one of [`new_id`]'s: anything else names no stream, and never reaches
/// the store.
fn well_formed(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A request refused with a `400`: its code and what it says.
#[derive(Debug)]
pub(crate) struct BadRequest {
    code: &'static str,
    message: String,
}

impl BadRequest {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        BadRequest {
            code,
            message: message.into(),
        }
    }

    /// The `400` in the standard error shape.
    pub(crate) fn response(&self) -> Response<ProxyBody> {
        error(StatusCode::BAD_REQUEST, self.code, &self.message)
    }
}

/// Whether a request asks for a resumable stream (`x-resumable: 1` or `true`; `0`, `false` or
/// no header: no), or why it cannot have one.
pub(crate) fn asked(
    config: Option<&ResumeConfig>,
    headers: &HeaderMap,
) -> Result<bool, BadRequest> {
    let Some(value) = headers.get(&RESUMABLE) else {
        return Ok(false);
    };
    let value = value.to_str().unwrap_or("").trim();
    let wanted = if value == "1" || value.eq_ignore_ascii_case("true") {
        true
    } else if value == "0" || value.eq_ignore_ascii_case("false") {
        false
    } else {
        return Err(BadRequest::new(
            "invalid_header",
            "x-resumable takes 1 (a resumable stream) or 0",
        ));
    };
    if wanted && config.is_none() {
        return Err(BadRequest::new("resumable_disabled", OFF));
    }
    Ok(wanted)
}

/// The `400` for `x-resumable` on a request that is not a stream.
pub(crate) fn not_a_stream() -> Response<ProxyBody> {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "x-resumable needs a streamed request: send \"stream\": true",
    )
}

/// The `400` for `x-resumable` on another route than chat and text completions.
pub(crate) fn not_here(path: &str) -> Response<ProxyBody> {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!(
            "x-resumable is for streams of /v1/chat/completions and /v1/completions, not {}",
            crate::util::cut(path, 256)
        ),
    )
}

/// The event a resumed client had last: `Last-Event-ID` (an `EventSource` reconnecting sends
/// it), else `?last_event_id=`, else 0 (from the first event). The header wins: a page's
/// `EventSource` keeps its URL when it reconnects.
fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> Result<u64, BadRequest> {
    let given = match headers.get("last-event-id") {
        Some(value) => Some(("Last-Event-ID", value.to_str().unwrap_or("?"))),
        None => query.and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("last_event_id="))
                .map(|value| ("last_event_id", value))
        }),
    };
    let Some((name, value)) = given else {
        return Ok(0);
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(0);
    }
    value.parse().map_err(|_| {
        BadRequest::new(
            "invalid_last_event_id",
            format!(
                "{name} {:?}: give the number of the last event you had (its id: line), or 0",
                crate::util::cut(value, 64)
            ),
        )
    })
}

fn not_found() -> Response<ProxyBody> {
    error(
        StatusCode::NOT_FOUND,
        "stream_not_found",
        "no such stream: it expired (see --resume-ttl) or never was",
    )
}

fn store_failed(e: &StoreError) -> Response<ProxyBody> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "stream_store_error",
        &e.to_string(),
    )
}

/// `GET /v1/streams/{id}`: the stream's events after the client's last one, each with its
/// `id:`, then the rest as they come, to its end.
pub(crate) async fn read(
    config: &ResumeConfig,
    id: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Response<ProxyBody> {
    let after = match last_event_id(headers, query) {
        Ok(after) => after,
        Err(refused) => return refused.response(),
    };
    if !well_formed(id) {
        return not_found();
    }
    match config.store.read(id, after, Duration::ZERO).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(),
        Err(e) => return store_failed(&e),
    }
    let body = ResumeBody::new(config.store.clone(), id, after).map_err(Into::into);
    Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .header(CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .header(
            STREAM_ID.clone(),
            HeaderValue::from_str(id).expect("hex digits"),
        )
        .body(crate::coalesce::ReadyFrames::new(body).boxed_unsync())
        .expect("a valid response")
}

/// `DELETE /v1/streams/{id}`: stops the stream and drops its upstream request: at once when
/// this process produces it (`producers`), else at its producer's next heartbeat (within
/// 2 s, on whichever replica it runs); its readers get the `stream_cancelled` error event.
pub(crate) async fn cancel(
    config: &ResumeConfig,
    producers: &Producers,
    id: &str,
) -> Response<ProxyBody> {
    if !well_formed(id) {
        return not_found();
    }
    match config.store.cancel(id).await {
        Ok(true) => {
            producers.cancel(id);
            json(
                StatusCode::OK,
                serde_json::json!({"id": id, "cancelled": true}).to_string(),
            )
        }
        Ok(false) => not_found(),
        Err(e) => store_failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_random_bits_in_hex() {
        let (a, b) = (new_id(), new_id());
        assert!(well_formed(&a) && well_formed(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!well_formed("../x"));
        assert!(!well_formed(&a.to_uppercase()));
    }

    #[test]
    fn last_event_id_from_the_header_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(last_event_id(&headers, None).unwrap(), 0);
        assert_eq!(
            last_event_id(&headers, Some("a=1&last_event_id=7")).unwrap(),
            7
        );
        headers.insert("last-event-id", HeaderValue::from_static(" 12 "));
        assert_eq!(
            last_event_id(&headers, Some("last_event_id=7")).unwrap(),
            12
        );
        headers.insert("last-event-id", HeaderValue::from_static("x"));
        assert_eq!(
            last_event_id(&headers, None)
                .unwrap_err()
                .response()
                .status(),
            StatusCode::BAD_REQUEST
        );
        assert!(last_event_id(&HeaderMap::new(), Some("last_event_id=-1")).is_err());
    }

    #[test]
    fn x_resumable_values() {
        let config = ResumeConfig::memory(ResumeConfig::DEFAULT_TTL);
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(&RESUMABLE, HeaderValue::from_static(value));
            headers
        };
        assert!(!asked(Some(&config), &HeaderMap::new()).unwrap());
        assert!(asked(Some(&config), &with("1")).unwrap());
        assert!(asked(Some(&config), &with("TRUE")).unwrap());
        assert!(!asked(Some(&config), &with("0")).unwrap());
        assert!(!asked(None, &with("0")).unwrap());
        assert_eq!(
            asked(Some(&config), &with("yes"))
                .unwrap_err()
                .response()
                .status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            asked(None, &with("1")).unwrap_err().response().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
