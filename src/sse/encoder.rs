//! Writing canonical event stream frames.

use super::event::Event;
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// Why an event could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The event type or id holds CR, LF or NUL, which the wire format cannot carry.
    InvalidField {
        /// `"event"` or `"id"`.
        field: &'static str,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::InvalidField { field } => {
                write!(f, "the `{field}` field must not contain CR, LF or NUL")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

fn check_field(field: &'static str, value: &str) -> Result<(), EncodeError> {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Err(EncodeError::InvalidField { field })
    } else {
        Ok(())
    }
}

/// Appends one canonical frame to `dst`: `event: X\n` when typed, `id: X\n` when given,
/// `retry: N\n` when given, one `data: ` line per line of the data (split on CR, LF and CRLF),
/// and the closing blank line.
///
/// Nothing is written when an error is returned.
///
/// ```
/// use bytes::BytesMut;
/// use tower_llm_stream::sse::{encode_event, Event};
///
/// let mut out = BytesMut::new();
/// encode_event(&Event::new("a\r\nb").with_event_type("delta"), &mut out).unwrap();
/// assert_eq!(&out[..], b"event: delta\ndata: a\ndata: b\n\n");
///
/// let bad = Event::new("x").with_id("1\n2");
/// assert!(encode_event(&bad, &mut out).is_err());
/// ```
pub fn encode_event(event: &Event, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let event_type = event.event_type().filter(|t| !t.is_empty());
    if let Some(event_type) = event_type {
        check_field("event", event_type)?;
    }
    if let Some(id) = event.id() {
        check_field("id", id)?;
    }
    let data = event.data();
    dst.reserve(data.len() + 16);
    if let Some(event_type) = event_type {
        put_line(dst, b"event: ", event_type.as_bytes());
    }
    if let Some(id) = event.id() {
        put_line(dst, b"id: ", id.as_bytes());
    }
    if let Some(retry) = event.retry() {
        put_line(dst, b"retry: ", retry.to_string().as_bytes());
    }
    encode_data(data.as_bytes(), dst);
    Ok(())
}

/// Appends an untyped event carrying `data` (which need not be valid UTF-8-checked again:
/// it is written as given) as `data: ` lines and the closing blank line.
///
/// This is the hot path for re-encoding JSON payloads: JSON never contains raw CR or LF, so
/// the result is a single `data: ` line.
///
/// ```
/// use bytes::BytesMut;
/// use tower_llm_stream::sse::encode_data;
///
/// let mut out = BytesMut::new();
/// encode_data(br#"{"a":1}"#, &mut out);
/// assert_eq!(&out[..], b"data: {\"a\":1}\n\n");
/// ```
pub fn encode_data(data: &[u8], dst: &mut BytesMut) {
    let mut rest = data;
    while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
        put_line(dst, b"data: ", &rest[..i]);
        let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
        rest = &rest[i + if crlf { 2 } else { 1 }..];
    }
    put_line(dst, b"data: ", rest);
    dst.put_u8(b'\n');
}

/// A comment frame (`: text\n\n`), e.g. a keep-alive. Line breaks in `text` become separate
/// comment lines.
///
/// ```
/// use tower_llm_stream::sse::encode_comment;
///
/// assert_eq!(&encode_comment("keep-alive")[..], b": keep-alive\n\n");
/// ```
#[must_use]
pub fn encode_comment(text: &str) -> Bytes {
    let mut dst = BytesMut::with_capacity(text.len() + 4);
    for line in text.split(['\r', '\n']) {
        if line.is_empty() {
            dst.put_slice(b":\n");
        } else {
            put_line(&mut dst, b": ", line.as_bytes());
        }
    }
    dst.put_u8(b'\n');
    dst.freeze()
}

fn put_line(dst: &mut BytesMut, prefix: &[u8], value: &[u8]) {
    dst.put_slice(prefix);
    dst.put_slice(value);
    dst.put_u8(b'\n');
}
