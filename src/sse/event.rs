//! What the decoder yields: [`Block`]s, some of which carry a dispatched [`Event`].

use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// One dispatched server-sent event, as the WHATWG "event stream interpretation" defines it.
///
/// Every text field is valid UTF-8 (invalid upstream bytes were replaced by U+FFFD). Fields are
/// slices of the input `Bytes` where possible, so cloning an `Event` never copies its payload.
///
/// ```
/// use tower_llm_stream::sse::Event;
///
/// let event = Event::new("hello").with_event_type("greeting").with_id("7");
/// assert_eq!(event.data(), "hello");
/// assert_eq!(event.event_type(), Some("greeting"));
/// assert_eq!(event.id(), Some("7"));
/// assert_eq!(event.retry(), None);
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub(crate) event_type: Option<Bytes>,
    pub(crate) data: Bytes,
    pub(crate) id: Option<Bytes>,
    pub(crate) retry: Option<u64>,
}

impl Event {
    /// An untyped event (`message`) carrying `data`.
    pub fn new(data: impl Into<String>) -> Self {
        Event {
            data: Bytes::from(data.into()),
            ..Event::default()
        }
    }

    /// Sets the event type (the `event:` field).
    pub fn with_event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(Bytes::from(event_type.into()));
        self
    }

    /// Sets the last event id in force for this event (the `id:` field).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(Bytes::from(id.into()));
        self
    }

    /// Sets the reconnection time in milliseconds (the `retry:` field).
    pub fn with_retry(mut self, retry: u64) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The event type given by an `event:` field, `None` when the block had none.
    ///
    /// `Some("")` means an empty `event:` field was given; both mean `message` to a browser.
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref().map(as_str)
    }

    /// The event's data: the `data:` lines joined with `\n`.
    pub fn data(&self) -> &str {
        as_str(&self.data)
    }

    /// The event's data as the underlying `Bytes` (valid UTF-8), for zero-copy use.
    pub fn data_bytes(&self) -> &Bytes {
        &self.data
    }

    /// Consumes the event and returns its data.
    pub fn into_data(self) -> Bytes {
        self.data
    }

    /// The last event id in force when this event was dispatched (ids persist across events).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref().map(as_str)
    }

    /// The last valid `retry:` value in this event's own block, in milliseconds.
    ///
    /// Values beyond `u64::MAX` saturate.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("event_type", &self.event_type())
            .field("data", &self.data())
            .field("id", &self.id())
            .field("retry", &self.retry)
            .finish()
    }
}

/// Text fields are validated (or lossily converted) when they are built, so this never loses
/// anything; it exists because `unsafe` is denied in this crate.
fn as_str(bytes: &[u8]) -> &str {
    simdutf8::basic::from_utf8(bytes).unwrap_or("\u{FFFD}")
}

/// One block of an event stream: the bytes up to and including the blank line that ends it.
/// Every block has at least one line before its blank line (extra blank lines carry nothing
/// and are consumed silently).
///
/// A block that holds `data:` lines dispatches an [`Event`]; blocks without data (comments,
/// keep-alives, id-only or retry-only blocks) are yielded too, so a proxy can pass them through
/// byte for byte.
///
/// ```
/// use bytes::Bytes;
/// use tower_llm_stream::sse::Decoder;
///
/// let mut decoder = Decoder::new();
/// decoder.push(Bytes::from_static(b": keep-alive\n\ndata: hi\r\n\r\n"));
/// let comment = decoder.next_block().unwrap().unwrap();
/// assert!(comment.event().is_none());
/// assert_eq!(&comment.raw()[..], b": keep-alive\n\n");
/// assert!(comment.is_canonical());
///
/// let event = decoder.next_block().unwrap().unwrap();
/// assert_eq!(event.event().unwrap().data(), "hi");
/// assert!(!event.is_canonical()); // CRLF line endings
/// assert_eq!(&event.canonical()[..], b"data: hi\n\n");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Block {
    pub(crate) raw: Bytes,
    pub(crate) has_cr: bool,
    pub(crate) valid_utf8: bool,
    pub(crate) terminated: bool,
    pub(crate) event: Option<Event>,
}

impl Block {
    /// The exact bytes of the block as they arrived (a leading BOM excluded), including the
    /// line terminators and the blank line that ended it.
    ///
    /// One exception keeps latency at zero: a block ended by a CR that is the last byte of a
    /// chunk is dispatched at once, and the LF that may follow in the next chunk (the rest of
    /// a CRLF) is dropped. Such a block is never [canonical](Self::is_canonical), and its
    /// [`canonical`](Self::canonical) form is the same either way.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The event this block dispatched, if it had any `data:` line.
    pub fn event(&self) -> Option<&Event> {
        self.event.as_ref()
    }

    /// Consumes the block and returns its event, if any.
    pub fn into_event(self) -> Option<Event> {
        self.event
    }

    /// `false` only for the block [`Decoder::finish`](super::Decoder::finish) returns: the
    /// stream ended before its blank line, so a conforming client drops it.
    pub fn is_terminated(&self) -> bool {
        self.terminated
    }

    /// Whether [`raw`](Self::raw) is already canonical: LF line endings only, valid UTF-8, and
    /// terminated by a blank line.
    pub fn is_canonical(&self) -> bool {
        !self.has_cr && self.valid_utf8 && self.terminated
    }

    /// The block with LF line endings, valid UTF-8 and a closing blank line.
    ///
    /// Returns [`raw`](Self::raw) itself (no copy) when it already is canonical.
    pub fn canonical(&self) -> Bytes {
        if self.is_canonical() {
            return self.raw.clone();
        }
        let text = String::from_utf8_lossy(&self.raw);
        let mut out = BytesMut::with_capacity(text.len() + 2);
        let mut rest = text.as_bytes();
        while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
            out.put_slice(&rest[..i]);
            out.put_u8(b'\n');
            let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
            rest = &rest[i + if crlf { 2 } else { 1 }..];
        }
        out.put_slice(rest);
        if !self.terminated {
            if !rest.is_empty() {
                out.put_u8(b'\n');
            }
            out.put_u8(b'\n');
        }
        out.freeze()
    }
}

impl Block {
    /// A block carrying a typed message of another framing (AWS event-stream).
    pub(crate) fn from_typed(event_type: String, payload: Bytes, terminated: bool) -> Block {
        let mut block = Block::from_line(payload, terminated);
        if let Some(event) = &mut block.event {
            event.event_type = Some(Bytes::from(event_type));
        }
        block
    }

    /// A block carrying one line of another framing (NDJSON) as its event data.
    pub(crate) fn from_line(line: Bytes, terminated: bool) -> Block {
        let valid_utf8 = std::str::from_utf8(&line).is_ok();
        let data = if valid_utf8 {
            line.clone()
        } else {
            Bytes::from(String::from_utf8_lossy(&line).into_owned())
        };
        Block {
            raw: line,
            has_cr: false,
            valid_utf8,
            terminated,
            event: Some(Event {
                data,
                ..Event::default()
            }),
        }
    }

    /// The block in the standard form: an event as exactly its `event:`, `id:`, `retry:` and
    /// `data:` lines (comments and unknown fields inside it dropped), then a blank line; a
    /// block without an event as [`canonical`](Self::canonical).
    ///
    /// Returns [`raw`](Self::raw) itself (no copy) when it already is in that form, as the
    /// events of well-behaved upstreams are.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use tower_llm_stream::sse::Decoder;
    ///
    /// let mut decoder = Decoder::new();
    /// decoder.push(Bytes::from_static(b"data: {}\n\n: hi\ndata: [DONE]\nfoo: bar\n\n"));
    /// let plain = decoder.next_block().unwrap().unwrap();
    /// assert_eq!(plain.normalized().as_ptr(), plain.raw().as_ptr()); // untouched
    /// let messy = decoder.next_block().unwrap().unwrap();
    /// assert_eq!(&messy.normalized()[..], b"data: [DONE]\n\n");
    /// ```
    pub fn normalized(&self) -> Bytes {
        let Some(event) = &self.event else {
            return self.canonical();
        };
        if self.is_canonical() && event.id.is_none() && event.retry.is_none() {
            let data = event.data_bytes();
            let prefix_len = match event.event_type() {
                None => 0,
                Some(t) => 8 + t.len(), // "event: " + type + "\n"
            };
            let plain = self.raw.len() == prefix_len + 6 + data.len() + 2
                && self.raw[prefix_len..].starts_with(b"data: ")
                && (prefix_len == 0 || self.raw.starts_with(b"event: "))
                && memchr::memchr(b'\n', data).is_none();
            if plain {
                return self.raw.clone();
            }
        }
        let mut out = BytesMut::with_capacity(self.raw.len());
        if super::encode_event(event, &mut out).is_err() {
            // Only an event type or id with a line break or NUL fails, and decoded ones have
            // none; keep the canonical block rather than lose the event.
            return self.canonical();
        }
        out.freeze()
    }
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("raw", &self.raw)
            .field("terminated", &self.terminated)
            .field("event", &self.event)
            .finish()
    }
}
