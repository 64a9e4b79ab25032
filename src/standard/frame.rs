//! The one reader of standard frames: what a frame is, without parsing its JSON where the
//! frame's first bytes tell (every frame is canonical: `event:` first when typed, then one
//! `data: ` line, then a blank line; see [`crate::reframe`]).

use crate::sse::Block;

/// The data of a frame that is one untyped event on one line (`data: X\n\n`): every chat,
/// completion and audio event of the standard stream.
///
/// ```
/// use tower_llm_stream::standard::frame::untyped_data;
///
/// assert_eq!(untyped_data(b"data: {\"a\":1}\n\n"), Some(&b"{\"a\":1}"[..]));
/// assert_eq!(untyped_data(b"event: x\ndata: 1\n\n"), None);
/// assert_eq!(untyped_data(b": keep-alive\n\n"), None);
/// ```
#[must_use]
pub fn untyped_data(frame: &[u8]) -> Option<&[u8]> {
    let rest = frame.strip_prefix(b"data: ")?;
    let data = rest.strip_suffix(b"\n\n")?;
    (memchr::memchr(b'\n', data).is_none()).then_some(data)
}

/// Whether the frame is `data: [DONE]`.
///
/// ```
/// assert!(tower_llm_stream::standard::frame::is_done(b"data: [DONE]\n\n"));
/// ```
#[must_use]
pub fn is_done(frame: &[u8]) -> bool {
    frame == super::DONE_FRAME
}

/// Whether the frame is an error event: `data: {"error":…}` or `event: error`.
///
/// ```
/// use tower_llm_stream::standard::{error_frame, frame::is_error_event};
///
/// assert!(is_error_event(&error_frame("upstream_error", "stream_truncated", "cut")));
/// assert!(is_error_event(b"event: error\ndata: {\"type\":\"error\"}\n\n"));
/// assert!(!is_error_event(b"data: {\"choices\":[]}\n\n"));
/// ```
#[must_use]
pub fn is_error_event(frame: &[u8]) -> bool {
    is_error_data(frame.strip_prefix(b"data: ").unwrap_or_default())
        || frame.starts_with(b"event: error\n")
}

/// Whether an untyped event's data is an error object: the standard's (`{"error":…}`, written
/// compactly), or an upstream's with whitespace (`{ "error" : … }`).
pub(crate) fn is_error_data(data: &[u8]) -> bool {
    if data.starts_with(b"{\"error\"") {
        return true;
    }
    let trim = |bytes: &[u8]| -> usize {
        bytes
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(bytes.len())
    };
    let rest = &data[trim(data)..];
    let Some(rest) = rest.strip_prefix(b"{") else {
        return false;
    };
    let Some(rest) = rest[trim(rest)..].strip_prefix(b"\"error\"") else {
        return false;
    };
    rest[trim(rest)..].starts_with(b":")
}

/// What is wrong with an event's data that is not one JSON value (surrounding whitespace
/// allowed), for the dialects that forward an upstream's JSON as it is: every `data:` of the
/// standard stream is JSON but `[DONE]`, and a client's SDK parses each one. `None` for JSON.
///
/// [`is_json`](super::probe::is_json) decides, without allocating; serde_json says what is
/// wrong (and has the last word: a value it reads is JSON).
pub(crate) fn not_json(data: &[u8]) -> Option<String> {
    if super::probe::is_json(data) {
        return None;
    }
    let err = serde_json::from_slice::<serde::de::IgnoredAny>(data).err()?;
    let shown: String = String::from_utf8_lossy(data).chars().take(120).collect();
    Some(format!("the event's data is not JSON ({err}): {shown:?}"))
}

/// Whether the frame is a Responses API event (typed `event: response.…`, or untyped with
/// the type leading its data): what tells a Responses stream from the others.
#[must_use]
pub fn is_responses_event(frame: &[u8]) -> bool {
    frame.starts_with(b"event: response.") || frame.starts_with(b"data: {\"type\":\"response.")
}

/// Whether the frame is a Responses terminal event (the one that carries the usage).
///
/// ```
/// use tower_llm_stream::standard::frame::is_responses_terminal;
///
/// assert!(is_responses_terminal(b"event: response.completed\ndata: {}\n\n"));
/// assert!(!is_responses_terminal(b"event: response.created\ndata: {}\n\n"));
/// ```
#[must_use]
pub fn is_responses_terminal(frame: &[u8]) -> bool {
    frame.starts_with(b"event: response.completed\n")
        || frame.starts_with(b"event: response.incomplete\n")
        || frame.starts_with(b"event: response.failed\n")
}

/// The `sequence_number` of a Responses event, read without parsing the JSON (however it is
/// spaced: an upstream's event may pass as it came).
///
/// ```
/// use tower_llm_stream::standard::frame::sequence_number;
///
/// assert_eq!(sequence_number(b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":4}\n\n"), Some(4));
/// assert_eq!(sequence_number(b"data: {\"sequence_number\" : 7 }\n\n"), Some(7));
/// assert_eq!(sequence_number(b"data: {}\n\n"), None);
/// ```
#[must_use]
pub fn sequence_number(frame: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"sequence_number\"";
    let json_whitespace = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    memchr::memmem::find_iter(frame, KEY).find_map(|at| {
        let rest = &frame[at + KEY.len()..];
        let rest = &rest[rest.iter().take_while(|b| json_whitespace(b)).count()..];
        let rest = rest.strip_prefix(b":")?;
        let digits = &rest[rest.iter().take_while(|b| json_whitespace(b)).count()..];
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
    })
}

/// The `code` of an error event frame, else its `type`, else `upstream_error` (the rare path:
/// parses the event's JSON).
///
/// ```
/// use tower_llm_stream::standard::{error_frame, frame::error_event_code};
///
/// assert_eq!(error_event_code(&error_frame("t", "stream_truncated", "m")), "stream_truncated");
/// ```
#[must_use]
pub fn error_event_code(frame: &[u8]) -> String {
    let data = frame
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"data: "))
        .unwrap_or_default();
    error_code(data).unwrap_or_else(|| "upstream_error".to_owned())
}

/// The `code` (else the `type`) of an error object, `{"error":{…}}` or the object itself: an
/// error event's data or an error response's body. `None` when it has neither.
pub(crate) fn error_code(json: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    let error = value.get("error").unwrap_or(&value);
    match error.get("code").or_else(|| error.get("type")) {
        Some(serde_json::Value::String(code)) => Some(code.clone()),
        Some(other) if !other.is_null() => Some(other.to_string()),
        _ => None,
    }
}

/// Whether a frame is only comment lines (a keep-alive), which is no upstream activity.
///
/// ```
/// use tower_llm_stream::standard::frame::is_comment_only;
///
/// assert!(is_comment_only(b": keep-alive\n\n"));
/// assert!(!is_comment_only(b": note\ndata: 1\n\n"));
/// ```
#[must_use]
pub fn is_comment_only(frame: &[u8]) -> bool {
    if frame.first() != Some(&b':') {
        return false;
    }
    frame
        .split(|&b| b == b'\n')
        .all(|line| line.is_empty() || line[0] == b':')
}

/// Whether an upstream block ends an OpenAI-style stream: `[DONE]`, an error event, or a
/// Responses terminal event (typed, or untyped with the type leading its data).
pub(crate) fn is_terminator(block: &Block) -> bool {
    let Some(event) = block.event() else {
        return false;
    };
    let data = event.data_bytes();
    if &data[..] == b"[DONE]" || is_error_data(data) {
        return true;
    }
    let kind = match event.event_type() {
        Some(kind) if !kind.is_empty() => kind.as_bytes(),
        // Untyped Responses events (some servers omit `event:`): the type leads the data.
        _ => match data.strip_prefix(b"{\"type\":\"") {
            Some(rest) => &rest[..memchr::memchr(b'"', rest).unwrap_or(0)],
            None => return false,
        },
    };
    matches!(
        kind,
        b"response.completed" | b"response.incomplete" | b"response.failed" | b"error"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_json_says_what_is_wrong_and_shows_the_data_escaped() {
        assert_eq!(not_json(b" {\"a\" : [1, \"\\u0000\"] } "), None);
        let detail = not_json(b"{\"a\":\"x\0y\"}").unwrap();
        assert!(detail.contains("control character"), "{detail}");
        assert!(detail.contains("\\0") && !detail.contains('\0'), "{detail}");
        let detail = not_json(b"{\"a\":1} x").unwrap();
        assert!(detail.contains("trailing characters"), "{detail}");
        let long = format!("[{}", "1,".repeat(500));
        assert!(not_json(long.as_bytes()).unwrap().len() < 300);
    }

    #[test]
    fn an_error_object_is_told_however_written() {
        for data in [
            &b"{\"error\":{}}"[..],
            b"{ \"error\" : {} }",
            b"\t{\t\"error\"\t:{}}",
            b"{\"error\"",
        ] {
            assert!(is_error_data(data), "{:?}", String::from_utf8_lossy(data));
        }
        for data in [
            &b"{\"id\":1,\"error\":{}}"[..],
            b"{ \"error\" }",
            b"{ \"errors\" : {} }",
            b"[\"error\"]",
            b"",
        ] {
            assert!(!is_error_data(data), "{:?}", String::from_utf8_lossy(data));
        }
    }
}
