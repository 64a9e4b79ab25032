//! Reading raw JSON without building values: the helpers the standard stream's readers (and
//! the provider module's request rewriting) share.

/// Reads `json` as a `T`: one UTF-8 check of the whole text (simdutf8: SIMD where the CPU
/// has it), then serde_json's reader of `str`s, which does not check each string again as
/// its reader of byte slices does (one check per borrowed string and key: a fifth of a chat
/// chunk's parse). Text that is not UTF-8 is read as bytes, so that the error says where.
pub(crate) fn parse<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> serde_json::Result<T> {
    match text(json) {
        Some(text) => serde_json::from_str(text),
        None => serde_json::from_slice(json),
    }
}

/// `json` as text, if it is UTF-8 (as JSON text must be, RFC 8259): the one check the readers
/// here make before serde_json's `str` reader.
pub(crate) fn text(json: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(json).ok()
}

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
    // What is not UTF-8 cannot be one object.
    let mut de = serde_json::Deserializer::from_str(text(json)?);
    let complete = serde::Deserializer::deserialize_map(&mut de, Entries(visit)).ok()?;
    if complete {
        de.end().ok()?;
    }
    Some(complete)
}

/// Visits a JSON array's elements as raw JSON, like [`for_each_entry`].
pub(crate) fn for_each_element<'a>(
    json: &'a str,
    visit: impl FnMut(&'a serde_json::value::RawValue) -> bool,
) -> Option<bool> {
    let mut de = serde_json::Deserializer::from_str(json);
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
