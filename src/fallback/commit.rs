//! What an attempt's head and first frames say: hold on, commit, or fall back.

use crate::standard::frame::{error_event_code, is_comment_only, is_done, is_error_event};
use crate::standard::json;
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// What a frame before the commit means.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing at all (a keep-alive, an empty frame): dropped, the client is not waiting
    /// for bytes yet.
    Skip,
    /// Nothing the client needs yet (a role chunk, a lifecycle event): held.
    Hold,
    /// Content, a finish, the end: the stream commits to this attempt.
    Commit,
    /// An error event: the attempt failed, with this code.
    Fail(String),
}

/// Why a response status is a failure to fall back from; `None` when the response is the
/// answer (a success, or a `4xx` that is the client's).
pub(super) fn failed_status(status: StatusCode) -> Option<&'static str> {
    Some(match status.as_u16() {
        429 => "rate_limited",
        502 => "bad_gateway",
        503 => "unavailable",
        504 => "gateway_timeout",
        500..=599 => "server_error",
        _ => return None,
    })
}

/// Typed events that come before any content: the Responses lifecycle, Anthropic's opening.
const HELD_EVENTS: &[&[u8]] = &[
    b"response.created",
    b"response.in_progress",
    b"response.queued",
    b"response.output_item.added",
    b"response.content_part.added",
    b"message_start",
    b"content_block_start",
    b"ping",
];

/// The verdict on one standard frame before the commit (the rare path: a few frames per
/// stream, then never again).
pub(super) fn verdict(frame: &[u8]) -> Verdict {
    if frame.is_empty() || is_comment_only(frame) {
        return Verdict::Skip;
    }
    if is_error_event(frame) {
        return Verdict::Fail(error_event_code(frame));
    }
    if frame.starts_with(b"event: response.failed\n") {
        // A Responses stream that failed before any output: its error's code.
        return Verdict::Fail(failed_code(frame).unwrap_or_else(|| "response_failed".to_owned()));
    }
    if is_done(frame) {
        return Verdict::Commit;
    }
    if let Some(rest) = frame.strip_prefix(b"event: ") {
        let kind = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
        return if HELD_EVENTS.contains(&kind) {
            Verdict::Hold
        } else {
            Verdict::Commit
        };
    }
    let Some(data) = frame
        .strip_prefix(b"data: ")
        .and_then(|d| d.strip_suffix(b"\n\n"))
    else {
        return Verdict::Commit;
    };
    match json::parse::<Chunk<'_>>(data) {
        // Azure's first chunk: no choices, its prompt filter results.
        Ok(Chunk {
            choices: Some(choices),
            usage: None,
        }) if choices.iter().all(Choice::is_empty) => Verdict::Hold,
        _ => Verdict::Commit,
    }
}

/// The `response.error.code` of a `response.failed` event.
fn failed_code(frame: &[u8]) -> Option<String> {
    let data = frame
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"data: "))?;
    let value: serde_json::Value = json::parse(data).ok()?;
    value["response"]["error"]["code"]
        .as_str()
        .map(str::to_owned)
}

/// A chat or completion chunk, as far as the commit cares.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<BTreeMap<Cow<'a, str>, &'a RawValue>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    finish_reason: Option<&'a RawValue>,
}

impl Choice<'_> {
    /// No content and no finish: a role chunk, or an empty delta.
    fn is_empty(&self) -> bool {
        let empty = |raw: &RawValue| matches!(raw.get(), "null" | "\"\"" | "[]" | "{}");
        self.finish_reason.is_none_or(empty)
            && self.text.as_deref().is_none_or(str::is_empty)
            && self.delta.as_ref().is_none_or(|delta| {
                delta
                    .iter()
                    .all(|(key, value)| key == "role" || empty(value))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_before_content_are_held() {
        for frame in [
            &b"data: {\"choices\":[],\"prompt_filter_results\":[{\"prompt_index\":0}]}\n\n"[..],
            b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"refusal\":null}}]}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":null}]}\n\n",
            b"event: response.created\ndata: {\"type\":\"response.created\"}\n\n",
            b"event: response.in_progress\ndata: {}\n\n",
            b"event: message_start\ndata: {}\n\n",
        ] {
            assert_eq!(verdict(frame), Verdict::Hold, "{}", String::from_utf8_lossy(frame));
        }
    }

    #[test]
    fn content_finish_and_done_commit() {
        for frame in [
            &b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n"[..],
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hm\"}}]}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"text\":\"a\"}]}\n\n",
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n",
            b"data: {\"type\":\"speech.audio.delta\",\"audio\":\"AAAA\"}\n\n",
            b"data: [DONE]\n\n",
            b"event: response.output_text.delta\ndata: {}\n\n",
            b"data: not json\n\n",
        ] {
            assert_eq!(verdict(frame), Verdict::Commit, "{}", String::from_utf8_lossy(frame));
        }
    }

    #[test]
    fn keep_alives_and_empty_frames_are_dropped() {
        assert_eq!(verdict(b": keep-alive\n\n"), Verdict::Skip);
        assert_eq!(verdict(b""), Verdict::Skip);
    }

    #[test]
    fn error_events_fail_with_their_code() {
        let failed = b"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"x\"}}}\n\n";
        assert_eq!(verdict(failed), Verdict::Fail("server_error".into()));
        let frame = crate::standard::error_frame("server_error", "stream_idle_timeout", "idle");
        assert_eq!(verdict(&frame), Verdict::Fail("stream_idle_timeout".into()));
        let typed = b"event: error\ndata: {\"type\":\"error\",\"code\":\"overloaded\"}\n\n";
        assert_eq!(verdict(typed), Verdict::Fail("overloaded".into()));
    }

    #[test]
    fn statuses() {
        assert_eq!(
            failed_status(StatusCode::TOO_MANY_REQUESTS),
            Some("rate_limited")
        );
        assert_eq!(failed_status(StatusCode::BAD_GATEWAY), Some("bad_gateway"));
        assert_eq!(
            failed_status(StatusCode::HTTP_VERSION_NOT_SUPPORTED),
            Some("server_error")
        );
        assert_eq!(failed_status(StatusCode::BAD_REQUEST), None);
        assert_eq!(failed_status(StatusCode::UNAUTHORIZED), None);
        assert_eq!(failed_status(StatusCode::OK), None);
    }
}
