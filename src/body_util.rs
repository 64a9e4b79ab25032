//! Small helpers shared by the layers' bodies.

use crate::error::BoxError;
use crate::standard::error_json;
use bytes::{Buf, Bytes};
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Body, Frame};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A raw JSON value's string (escapes decoded), if it is one: for fields kept as
/// [`RawValue`](serde_json::value::RawValue) and read only when needed.
pub(crate) fn raw_string(raw: &serde_json::value::RawValue) -> Option<std::borrow::Cow<'_, str>> {
    serde_json::from_str(raw.get()).ok()
}

#[cfg(feature = "provider")]
/// Visits a JSON object's entries in order, each key borrowed and its value as raw JSON,
/// without building a map. `visit` returns `false` to stop. `Some(true)`: the whole object
/// was visited; `Some(false)`: `visit` stopped; `None`: not one JSON object (or a key with
/// escapes, which cannot be borrowed).
pub(crate) fn for_each_entry<'a>(
    json: &'a [u8],
    visit: impl FnMut(&'a str, &'a serde_json::value::RawValue) -> bool,
) -> Option<bool> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let complete = serde::Deserializer::deserialize_map(&mut de, Entries(visit)).ok()?;
    if complete {
        de.end().ok()?;
    }
    Some(complete)
}

/// Visits a JSON array's elements as raw JSON, like [`for_each_entry`].
pub(crate) fn for_each_element<'a>(
    json: &'a [u8],
    visit: impl FnMut(&'a serde_json::value::RawValue) -> bool,
) -> Option<bool> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let complete = serde::Deserializer::deserialize_seq(&mut de, Elements(visit)).ok()?;
    if complete {
        de.end().ok()?;
    }
    Some(complete)
}

#[cfg(feature = "provider")]
struct Entries<F>(F);

#[cfg(feature = "provider")]
impl<'de, F> serde::de::Visitor<'de> for Entries<F>
where
    F: FnMut(&'de str, &'de serde_json::value::RawValue) -> bool,
{
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<bool, A::Error> {
        while let Some(key) = map.next_key::<&'de str>()? {
            let value = map.next_value::<&'de serde_json::value::RawValue>()?;
            if !(self.0)(key, value) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

struct Elements<F>(F);

impl<'de, F> serde::de::Visitor<'de> for Elements<F>
where
    F: FnMut(&'de serde_json::value::RawValue) -> bool,
{
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<bool, A::Error> {
        while let Some(value) = seq.next_element::<&'de serde_json::value::RawValue>()? {
            if !(self.0)(value) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Whether raw JSON is `null`, `""`, `[]` or `{}` (whitespace allowed inside the brackets).
pub(crate) fn is_empty_raw(raw: &serde_json::value::RawValue) -> bool {
    let text = raw.get().as_bytes();
    match text {
        b"null" | b"\"\"" => true,
        [open @ (b'[' | b'{'), inner @ .., close] => {
            matches!((open, close), (b'[', b']') | (b'{', b'}'))
                && inner.iter().all(u8::is_ascii_whitespace)
        }
        _ => false,
    }
}

/// Raw JSON as the compact serializer writes it: as is when it has no whitespace and no
/// escapes (the usual upstream), else parsed and written again.
pub(crate) fn compact_raw(raw: &serde_json::value::RawValue) -> Box<serde_json::value::RawValue> {
    let text = raw.get().as_bytes();
    let plain = !text
        .iter()
        .any(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\\'));
    if plain {
        return raw.to_owned();
    }
    serde_json::from_str::<serde_json::Value>(raw.get())
        .and_then(|value| serde_json::value::to_raw_value(&value))
        .unwrap_or_else(|_| raw.to_owned())
}

/// The frame's data as `Bytes`: zero-copy when it already is `Bytes`.
pub(crate) fn to_bytes<T: Buf>(mut data: T) -> Bytes {
    data.copy_to_bytes(data.remaining())
}

/// An HTTP error response with the standard JSON error body.
pub(crate) fn json_error_response(
    status: StatusCode,
    error_type: &str,
    code: &str,
    message: &str,
) -> Response<Bytes> {
    let body = error_json(error_type, code, message);
    let length = HeaderValue::from(body.len());
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_LENGTH, length);
    response
}

/// Polls `inner` and hands its frame on with the data as `Bytes` and the error boxed: the
/// pass-through path of every body in the crate.
pub(crate) fn poll_as_bytes<B>(
    inner: Pin<&mut B>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    inner
        .poll_frame(cx)
        .map(|frame| frame.map(|f| f.map(|f| f.map_data(to_bytes)).map_err(Into::into)))
}
