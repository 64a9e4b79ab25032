//! OpenAI Responses API streams, normalized: numbering, indexes and `*.added` events.

use crate::dialect::Dialect;
use crate::error::StreamError;
use crate::sse::Block;
use crate::standard::Frames;
use crate::standard::json;
use crate::standard::json_string;
use bytes::Bytes;
use serde_json::{Map, Value, json};

/// Normalizes Responses API streams (`/v1/responses`, `stream: true`) from OpenAI and from
/// servers that implement them partly (llama.cpp omits `sequence_number`, `output_index` and
/// `content_index`).
///
/// - Every event is `event: <type>` + `data: {…, "type": <type>, "sequence_number": n}`, with
///   `n` counted from 0 without gaps (renumbered when the upstream's numbers are missing or
///   broken).
/// - `response.created` comes first (one is made from the first event's response id when the
///   upstream skips it).
/// - Every `response` snapshot has `object: "response"` and an `output` list (llama.cpp's
///   `response.created` has neither; the SDKs' stream helpers need them).
/// - `output_index` and `content_index` are filled in from the items and content parts seen;
///   a text delta for a message item or part never announced gets its
///   `response.output_item.added` / `response.content_part.added` first.
/// - Usage only in the terminal `response.completed` / `response.incomplete` /
///   `response.failed` (a usage object on an earlier event becomes `null`).
/// - No `[DONE]` (dropped if an upstream sends one). An `error` event passes (renumbered,
///   with top-level `code`, `message` and `param` as documented, from a nested `error`
///   object when the upstream nested them); a
///   stream that ends without a terminal event or an error was cut off
///   ([`StreamError::Truncated`]).
#[derive(Debug, Clone, Default)]
pub struct OpenAiResponses {
    next_sequence: u64,
    started: bool,
    /// Output items by `output_index`: their id and how many content parts they have.
    items: Vec<(String, u64)>,
    terminated: bool,
    errored: bool,
}

const TERMINAL: [&str; 3] = [
    "response.completed",
    "response.incomplete",
    "response.failed",
];

fn is_content_event(kind: &str) -> bool {
    kind.starts_with("response.output_text.")
        || kind.starts_with("response.refusal.")
        || kind == "response.content_part.done"
}

impl OpenAiResponses {
    /// A normalizer for one stream.
    #[must_use]
    pub fn new() -> Self {
        OpenAiResponses::default()
    }

    fn emit(&mut self, mut event: Map<String, Value>, kind: &str, out: &mut Frames) {
        event.insert("type".into(), Value::from(kind));
        event.insert("sequence_number".into(), Value::from(self.next_sequence));
        self.next_sequence += 1;
        let mut text = format!("event: {kind}\ndata: ");
        text.push_str(&Value::Object(event).to_string());
        text.push_str("\n\n");
        out.push(Bytes::from(text));
    }

    /// The output index of item `id`, announcing a message item first if it is new.
    fn item_index(&mut self, id: &str, kind: &str, out: &mut Frames) -> Option<u64> {
        if let Some(index) = self.items.iter().position(|(item, _)| item == id) {
            return Some(index as u64);
        }
        if !is_content_event(kind) {
            return None; // an item type we cannot describe; leave it alone
        }
        let index = self.items.len() as u64;
        self.items.push((id.to_owned(), 0));
        let added = json!({
            "output_index": index,
            "item": {"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []},
        });
        if let Value::Object(added) = added {
            self.emit(added, "response.output_item.added", out);
        }
        Some(index)
    }
}

impl Dialect for OpenAiResponses {
    fn on_block(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        let Some(event) = block.event() else {
            // Comments and field-only blocks pass, but nothing follows a terminal event or an
            // `error` (its `response.failed` is an event, below).
            if !self.terminated && !self.errored {
                out.push(block.canonical());
            }
            return Ok(());
        };
        if event.data() == "[DONE]" {
            return Ok(());
        }
        let Ok(Value::Object(mut obj)) = json::parse::<Value>(event.data_bytes()) else {
            return Err(StreamError::MalformedEvent {
                detail: format!(
                    "a Responses event must be a JSON object, got {}",
                    json_string(&event.data().chars().take(120).collect::<String>())
                ),
            });
        };
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                event
                    .event_type()
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
            })
            .ok_or_else(|| StreamError::MalformedEvent {
                detail: "a Responses event without a type".into(),
            })?;
        if kind.contains(['\r', '\n', '\0']) {
            // It becomes the `event:` line: a line break in it would forge frames.
            return Err(StreamError::MalformedEvent {
                detail: format!(
                    "a Responses event type with a line break: {}",
                    json_string(&kind)
                ),
            });
        }
        // Nothing follows a terminal event; after an `error` only its `response.failed`.
        if self.terminated || (self.errored && kind != "response.failed") {
            return Ok(());
        }
        if !self.started {
            self.started = true;
            if kind != "response.created" {
                let id = obj
                    .get("response")
                    .and_then(|r| r.get("id"))
                    .cloned()
                    .unwrap_or_else(|| Value::from("resp_unknown"));
                let created = json!({"response": {"id": id, "object": "response", "status": "in_progress", "output": []}});
                if let Value::Object(created) = created {
                    self.emit(created, "response.created", out);
                }
            }
        }
        match kind.as_str() {
            "response.output_item.added" => {
                let index = obj
                    .get("output_index")
                    .and_then(Value::as_u64)
                    .unwrap_or(self.items.len() as u64);
                let id = obj
                    .get("item")
                    .and_then(|item| item.get("id"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let slot = index as usize;
                if self.items.len() <= slot {
                    self.items.resize(slot + 1, (String::new(), 0));
                }
                self.items[slot] = (id, 0);
                obj.entry("output_index").or_insert(Value::from(index));
            }
            "error" => {
                self.errored = true;
                normalize_error(&mut obj);
            }
            _ => {
                // `response.output_item.done` names its item inside `item`.
                let known = obj
                    .get("item")
                    .and_then(|item| item.get("id"))
                    .and_then(Value::as_str)
                    .and_then(|id| self.items.iter().position(|(item, _)| item == id));
                if let Some(index) = known {
                    obj.entry("output_index")
                        .or_insert(Value::from(index as u64));
                }
            }
        }
        if let Some(item_id) = obj
            .get("item_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        {
            if let Some(index) = self.item_index(&item_id, &kind, out) {
                obj.entry("output_index").or_insert(Value::from(index));
                let parts = &mut self.items[index as usize].1;
                if kind == "response.content_part.added" {
                    let part = obj
                        .get("content_index")
                        .and_then(Value::as_u64)
                        .unwrap_or(*parts);
                    *parts = (*parts).max(part + 1);
                    obj.entry("content_index").or_insert(Value::from(part));
                } else if is_content_event(&kind) {
                    if *parts == 0 && kind.ends_with(".delta") {
                        *parts = 1;
                        let part_type = if kind.starts_with("response.refusal.") {
                            "refusal"
                        } else {
                            "output_text"
                        };
                        let added = json!({
                            "item_id": item_id,
                            "output_index": index,
                            "content_index": 0,
                            "part": {"type": part_type, "text": "", "annotations": []},
                        });
                        if let Value::Object(added) = added {
                            self.emit(added, "response.content_part.added", out);
                        }
                    }
                    let current = self.items[index as usize].1.saturating_sub(1);
                    obj.entry("content_index").or_insert(Value::from(current));
                }
            }
        }
        let terminal = TERMINAL.contains(&kind.as_str());
        self.terminated |= terminal;
        if let Some(Value::Object(response)) = obj.get_mut("response") {
            // The response snapshot clients build on: an object with an `output` list.
            response
                .entry("object")
                .or_insert_with(|| Value::from("response"));
            if !response.get("output").is_some_and(Value::is_array) {
                response.insert("output".into(), Value::Array(Vec::new()));
            }
            if !terminal && response.get("usage").is_some_and(Value::is_object) {
                response.insert("usage".into(), Value::Null);
            }
        }
        self.emit(obj, &kind, out);
        Ok(())
    }

    fn on_unterminated(&mut self, block: Block, out: &mut Frames) -> Result<(), StreamError> {
        crate::dialect::translate_if_whole_json(self, block, out)
    }

    fn on_end(&mut self, _out: &mut Frames) -> Result<(), StreamError> {
        if self.terminated || self.errored {
            Ok(())
        } else {
            Err(StreamError::Truncated {
                detail: "the Responses stream ended without a terminal event",
            })
        }
    }
}

/// An upstream `error` event in the documented shape: top-level `code`, `message` and
/// `param` (strict clients such as async-openai require them), read from a nested `error`
/// object when the upstream put them there, and the standard `error` object beside them.
fn normalize_error(obj: &mut serde_json::Map<String, Value>) {
    let nested = obj.get("error").filter(|e| e.is_object()).cloned();
    let pick = |obj: &serde_json::Map<String, Value>, key: &str| {
        obj.get(key)
            .filter(|v| !v.is_null())
            .cloned()
            .or_else(|| nested.as_ref()?.get(key).filter(|v| !v.is_null()).cloned())
    };
    let code = pick(obj, "code").unwrap_or_else(|| Value::from("upstream_error"));
    let message = match pick(obj, "message") {
        Some(Value::String(m)) => Value::String(m),
        Some(other) => Value::String(other.to_string()),
        None => Value::from("the upstream reported an error"),
    };
    let param = pick(obj, "param").unwrap_or(Value::Null);
    let kind = nested
        .as_ref()
        .and_then(|e| e.get("type"))
        .filter(|t| t.is_string())
        .cloned()
        .unwrap_or_else(|| Value::from("upstream_error"));
    obj.insert("code".into(), code.clone());
    obj.insert("message".into(), message.clone());
    obj.insert("param".into(), param);
    obj.insert(
        "error".into(),
        json!({"type": kind, "code": code, "message": message}),
    );
}
