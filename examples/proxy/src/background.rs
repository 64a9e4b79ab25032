//! Background responses (`--resumable`): the Responses API's own way to resume a stream.
//!
//! A `POST /v1/responses` with `"stream": true, "background": true` runs to its end in a task
//! of its own, whether its client stays or not, into the proxy's stream store (module
//! [`resume`](crate::resume)), as a chat stream sent with `x-resumable: 1` does. The proxy
//! names the response: its `response.id` (in `response.created` and every snapshot of the
//! response after it) is `resp_` and 32 hex digits, the stream's id in the store, unique
//! whichever provider answers. Then, as OpenAI's API has it:
//!
//! - `GET /v1/responses/{id}?stream=true&starting_after=N`: the events whose
//!   `sequence_number` is after N (all of them without `starting_after`), then the rest as
//!   they come, to the terminal event. Event N + 1 of the store is the one numbered N: the
//!   standard Responses stream numbers its events from 0 without a gap.
//! - `GET /v1/responses/{id}`: the response as it stands (`in_progress` with its output so
//!   far, or final), folded from the stored events.
//! - `POST /v1/responses/{id}/cancel`: stops the stream and its upstream request (at once on
//!   the replica that produces it, at its next heartbeat from another); answers the response,
//!   `cancelled` (or as it ended, when it had already).
//!
//! An id that is not one of these responses, or that expired (`--resume-ttl`), gets a `404`.

use crate::resume::{BadRequest, ResumeConfig};
use crate::util::{ProxyBody, error, json};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::time::Duration;
use tower_llm_stream::resume::{Numbering, Producers, ResumeBody, StreamState, StreamStore};

/// Where background responses are read back and cancelled: `/v1/responses/{id}`.
pub const RESPONSES_PATH: &str = "/v1/responses/";

/// The refusal of `"background": true` when the proxy was started without `--resumable`.
pub const OFF: &str = "background responses are off: start the proxy with --resumable to use \"background\": true and GET /v1/responses/{id}";

/// A new background response's id: `resp_` and 128 random bits in hex. It is also the id of
/// its stream in the store.
pub fn new_id() -> String {
    format!("resp_{}", crate::resume::new_id())
}

/// Whether `id` can be one of [`new_id`]'s: anything else names no response.
fn well_formed(id: &str) -> bool {
    id.strip_prefix("resp_").is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Whether a Responses request asks for a background response: `"background": true` (given
/// as the raw JSON of the field), or why it cannot have one.
pub(crate) fn asked(
    config: Option<&ResumeConfig>,
    background: Option<&serde_json::value::RawValue>,
) -> Result<bool, BadRequest> {
    let Some(background) = background else {
        return Ok(false);
    };
    match background.get() {
        "true" if config.is_some() => Ok(true),
        "true" => Err(BadRequest::new("resumable_disabled", OFF)),
        "false" | "null" => Ok(false),
        _ => Err(BadRequest::new(
            "invalid_request",
            "\"background\" takes true or false",
        )),
    }
}

/// The `400` for `"background": true` without `"stream": true`.
pub(crate) fn not_a_stream() -> Response<ProxyBody> {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "this proxy runs background responses as streams: send \"stream\": true with \"background\": true (read one back with GET /v1/responses/{id}, streamed or not)",
    )
}

/// A frame of a background response's stream with its response named `id`: every event that
/// carries the response (`response.created`, `response.in_progress`, the terminal event) says
/// `"response": {"id": id, …, "background": true}`; the other events pass as they are,
/// without being parsed.
pub(crate) fn rename(frame: Bytes, id: &str) -> Bytes {
    if memchr::memmem::find(&frame, b"\"response\"").is_none() {
        return frame;
    }
    let mut out = Vec::with_capacity(frame.len() + id.len());
    let mut rest = &frame[..];
    while !rest.is_empty() {
        let end = memchr::memmem::find(rest, b"\n\n").map_or(rest.len(), |i| i + 2);
        let (block, after) = rest.split_at(end);
        rest = after;
        match renamed_block(block, id) {
            Some(block) => out.extend_from_slice(&block),
            None => out.extend_from_slice(block),
        }
    }
    Bytes::from(out)
}

/// One SSE block (`event:` and a one-line `data:`, as the standard stream writes them) with
/// its response's id replaced; `None` when it carries no response object.
fn renamed_block(block: &[u8], id: &str) -> Option<Vec<u8>> {
    let start = memchr::memmem::find(block, b"data: ")? + 6;
    let end = start + memchr::memchr(b'\n', &block[start..]).unwrap_or(block.len() - start);
    let mut event: Map<String, Value> = serde_json::from_slice(&block[start..end]).ok()?;
    let response = event.get_mut("response")?.as_object_mut()?;
    response.insert("id".into(), Value::from(id));
    response.insert("background".into(), Value::Bool(true));
    let data = serde_json::to_vec(&event).ok()?;
    let mut out = Vec::with_capacity(block.len() + id.len());
    out.extend_from_slice(&block[..start]);
    out.extend_from_slice(&data);
    out.extend_from_slice(&block[end..]);
    Some(out)
}

fn not_found(id: &str) -> Response<ProxyBody> {
    error(
        StatusCode::NOT_FOUND,
        "response_not_found",
        &format!(
            "no background response with id '{}': it expired (see --resume-ttl) or never was one of this proxy's (they come from POST /v1/responses with \"background\": true and \"stream\": true)",
            crate::util::cut(id, 64)
        ),
    )
}

fn store_failed(e: &tower_llm_stream::resume::StoreError) -> Response<ProxyBody> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "stream_store_error",
        &e.to_string(),
    )
}

/// `/v1/responses/{id}` and `/v1/responses/{id}/cancel` (`rest` is the path after
/// [`RESPONSES_PATH`]).
pub(crate) async fn route(
    config: &ResumeConfig,
    producers: &Producers,
    rest: &str,
    method: &Method,
    query: Option<&str>,
    limit: usize,
) -> Response<ProxyBody> {
    let rest = rest.trim_end_matches('/');
    let (id, cancel) = match rest.strip_suffix("/cancel") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    let allowed = if cancel { "POST" } else { "GET" };
    let method_ok = if cancel {
        method == Method::POST
    } else {
        method == Method::GET || method == Method::HEAD
    };
    if !method_ok {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("use {allowed}"),
        );
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static(allowed));
        return response;
    }
    if !well_formed(id) {
        return not_found(id);
    }
    if cancel {
        match config.store.cancel(id).await {
            // This process's producer stops at once: no event after the answer's.
            Ok(true) => {
                producers.cancel(id);
            }
            Ok(false) => {}
            Err(e) => return store_failed(&e),
        }
        return snapshot(config, id, limit, true).await;
    }
    let streamed = query_value(query, "stream").is_some_and(|v| v == "true" || v == "1");
    if !streamed {
        return snapshot(config, id, limit, false).await;
    }
    let after = match query_value(query, "starting_after") {
        None | Some("") => 0,
        Some(n) => match n.parse::<u64>() {
            // Event N + 1 of the store has sequence_number N.
            Ok(n) => n.saturating_add(1),
            Err(_) => {
                return BadRequest::new(
                    "invalid_starting_after",
                    format!(
                        "starting_after {:?}: give the sequence_number of the last event you had",
                        crate::util::cut(n, 64)
                    ),
                )
                .response();
            }
        },
    };
    match config.store.read(id, after, Duration::ZERO).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(id),
        Err(e) => return store_failed(&e),
    }
    let body = ResumeBody::new(config.store.clone(), id, after)
        .numbering(Numbering::SequenceNumbers)
        .map_err(Into::into);
    Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .header(CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(crate::coalesce::ReadyFrames::new(body).boxed_unsync())
        .expect("a valid response")
}

/// The value of `name` in a query string (`None`: not there).
fn query_value<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// The response as it stands, as JSON (`GET /v1/responses/{id}`, and the answer of a cancel).
async fn snapshot(
    config: &ResumeConfig,
    id: &str,
    limit: usize,
    cancelled: bool,
) -> Response<ProxyBody> {
    let mut folded = Snapshot::default();
    let mut after = 0;
    let state = loop {
        let read = match config.store.read(id, after, Duration::ZERO).await {
            Ok(Some(read)) => read,
            Ok(None) => return not_found(id),
            Err(e) => return store_failed(&e),
        };
        let Some(last) = read.events.last() else {
            break read.state;
        };
        after = last.number;
        for event in &read.events {
            folded.read = folded.read.saturating_add(event.frame.len());
            if folded.read > limit {
                return error(
                    StatusCode::BAD_GATEWAY,
                    "response_too_large",
                    &format!(
                        "the response is larger than this proxy's limit of {limit} bytes: read it streamed (?stream=true), or start the proxy with a larger --max-response-bytes"
                    ),
                );
            }
            folded.push(&event.frame);
        }
        if !read.state.is_live() {
            break read.state;
        }
    };
    // A cancel asked for now: the producer stops at its next heartbeat.
    let state = if cancelled && state.is_live() {
        StreamState::Cancelled
    } else {
        state
    };
    json(StatusCode::OK, folded.finish(id, state).to_string())
}

/// A background response folded from its events: the last snapshot of the response, with the
/// output the deltas after it built.
#[derive(Default)]
struct Snapshot {
    response: Map<String, Value>,
    output: Vec<Value>,
    /// The terminal event came: `response` is the final one.
    terminal: bool,
    /// An `error` event: its `code` and `message`.
    error: Option<Value>,
    read: usize,
}

impl Snapshot {
    fn push(&mut self, frame: &[u8]) {
        let Some(start) = memchr::memmem::find(frame, b"data: ").map(|i| i + 6) else {
            return;
        };
        let end = start + memchr::memchr(b'\n', &frame[start..]).unwrap_or(frame.len() - start);
        let Ok(Value::Object(mut event)) = serde_json::from_slice::<Value>(&frame[start..end])
        else {
            return;
        };
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let index = |key: &str, event: &Map<String, Value>| {
            event.get(key).and_then(Value::as_u64).map(|i| i as usize)
        };
        let output = index("output_index", &event);
        let content = index("content_index", &event);
        match kind.as_str() {
            "response.created"
            | "response.queued"
            | "response.in_progress"
            | "response.completed"
            | "response.incomplete"
            | "response.failed" => {
                if let Some(Value::Object(response)) = event.remove("response") {
                    if let Some(Value::Array(output)) = response.get("output")
                        && (!output.is_empty() || kind != "response.in_progress")
                    {
                        self.output = output.clone();
                    }
                    self.response = response;
                }
                self.terminal = !matches!(
                    kind.as_str(),
                    "response.created" | "response.queued" | "response.in_progress"
                );
            }
            "response.output_item.added" | "response.output_item.done" => {
                if let (Some(i), Some(item)) = (output, event.remove("item")) {
                    put(&mut self.output, i, item);
                }
            }
            "response.content_part.added" | "response.content_part.done" => {
                if let (Some(i), Some(c), Some(part)) = (output, content, event.remove("part"))
                    && let Some(item) = self.output.get_mut(i).and_then(Value::as_object_mut)
                    && let Value::Array(parts) = item
                        .entry("content")
                        .or_insert_with(|| Value::Array(Vec::new()))
                {
                    put(parts, c, part);
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                let key = if kind == "response.output_text.delta" {
                    "text"
                } else {
                    "refusal"
                };
                let delta = event.get("delta").and_then(Value::as_str).unwrap_or("");
                if let (Some(i), Some(c)) = (output, content)
                    && let Some(part) = self
                        .output
                        .get_mut(i)
                        .and_then(|item| item.get_mut("content"))
                        .and_then(|parts| parts.get_mut(c))
                        .and_then(Value::as_object_mut)
                {
                    let text = part.entry(key).or_insert(Value::from(""));
                    if let Value::String(text) = text {
                        text.push_str(delta);
                    }
                }
            }
            "response.function_call_arguments.delta" => {
                let delta = event.get("delta").and_then(Value::as_str).unwrap_or("");
                if let Some(item) = output
                    .and_then(|i| self.output.get_mut(i))
                    .and_then(Value::as_object_mut)
                {
                    let arguments = item.entry("arguments").or_insert(Value::from(""));
                    if let Value::String(arguments) = arguments {
                        arguments.push_str(delta);
                    }
                }
            }
            "error" => {
                let error = event.get("error").cloned().unwrap_or_else(|| {
                    serde_json::json!({"code": event.get("code"), "message": event.get("message")})
                });
                self.error = Some(error);
            }
            _ => {}
        }
    }

    /// The response object: final when the terminal event came, else as it stands, its
    /// status what the stream's state says.
    fn finish(mut self, id: &str, state: StreamState) -> Value {
        let mut response = std::mem::take(&mut self.response);
        response.insert("id".into(), Value::from(id));
        response.entry("object").or_insert(Value::from("response"));
        response.insert("background".into(), Value::Bool(true));
        if !self.terminal {
            response.insert("output".into(), Value::Array(self.output));
            let (status, error) = match (state, self.error) {
                (_, Some(error)) => ("failed", Some(error)),
                (StreamState::Live, None) => ("in_progress", None),
                (StreamState::Cancelled, None) => ("cancelled", None),
                (StreamState::Finished, None) => ("incomplete", None),
                (StreamState::ProducerLost, None) => (
                    "failed",
                    Some(
                        serde_json::json!({"code": "stream_producer_lost", "message": "the server producing this response stopped (its process ended): start a new request"}),
                    ),
                ),
                (StreamState::Failed, None) => (
                    "failed",
                    Some(
                        serde_json::json!({"code": "stream_store_error", "message": "the response could not be stored to its end: start a new request"}),
                    ),
                ),
            };
            response.insert("status".into(), Value::from(status));
            if let Some(error) = error {
                response.insert("error".into(), error);
            }
        }
        Value::Object(response)
    }
}

/// Sets `list[index]`, padding with nulls when events came out of order.
fn put(list: &mut Vec<Value>, index: usize, value: Value) {
    // Bounded: an index is at most one past the items seen (the standard stream counts them).
    if index > list.len() + 64 {
        return;
    }
    while list.len() <= index {
        list.push(Value::Null);
    }
    list[index] = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_events_that_carry_the_response_are_renamed() {
        let frame = Bytes::from(concat!(
            "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_up\",\"status\":\"in_progress\"}}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"\\\"response\\\"\"}\n\n",
        ));
        let renamed = rename(frame, "resp_x");
        assert_eq!(
            renamed,
            concat!(
                "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_x\",\"status\":\"in_progress\",\"background\":true}}\n\n",
                "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"\\\"response\\\"\"}\n\n",
            )
        );
        // Untouched, not even copied, when no event names a response.
        let delta = Bytes::from_static(b"event: x\ndata: {\"delta\":\"hi\"}\n\n");
        assert_eq!(rename(delta.clone(), "resp_x").as_ptr(), delta.as_ptr());
    }

    #[test]
    fn ids_and_query_values() {
        assert!(well_formed(&new_id()));
        assert!(!well_formed("resp_up"));
        assert!(!well_formed(&new_id().to_uppercase()));
        let query = Some("stream=true&starting_after=7&streamx=1");
        assert_eq!(query_value(query, "stream"), Some("true"));
        assert_eq!(query_value(query, "starting_after"), Some("7"));
        assert_eq!(query_value(query, "after"), None);
        assert_eq!(query_value(None, "stream"), None);
    }
}
