//! The standard chat stream as OpenAI Responses API events.

use super::chat::{
    ApiRenderer, ChatCompletionChunk, Counts, ErrorInfo, push_json_str, typed_frame,
};
use crate::standard::Frames;
use crate::standard::write::push_int;
use serde_json::{Map, Value, json};

/// The item being streamed: a message (text or refusal), reasoning, or a function call.
#[derive(Debug)]
enum OpenItem {
    Message {
        id: String,
        text: String,
        /// The content part is a refusal, not output text.
        refusal: bool,
    },
    Reasoning {
        id: String,
        text: String,
        /// The provider's signature of the reasoning (Anthropic's), returned to the client as
        /// the item's `encrypted_content` for the next turn.
        signature: Option<String>,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        /// The chat stream's index of the call.
        index: u32,
    },
}

/// Renders one stream: `response.created`, `response.in_progress`, items opened and closed as
/// the content kind changes, then the terminal event with usage.
#[derive(Debug)]
pub(super) struct ResponsesRenderer {
    sequence: u64,
    id: String,
    created: u64,
    model: String,
    started: bool,
    output: Vec<Value>,
    open: Option<OpenItem>,
    finish: Option<String>,
    usage: Option<Counts>,
    ended: bool,
}

impl ResponsesRenderer {
    pub(super) fn new() -> Self {
        ResponsesRenderer {
            sequence: 0,
            id: super::new_id("resp_"),
            created: 0,
            model: String::new(),
            started: false,
            output: Vec::new(),
            open: None,
            finish: None,
            usage: None,
            ended: false,
        }
    }

    fn emit(&mut self, kind: &str, fields: Value, out: &mut Frames) {
        let mut data = Map::with_capacity(8);
        data.insert("type".into(), kind.into());
        data.insert("sequence_number".into(), self.sequence.into());
        if let Value::Object(fields) = fields {
            data.extend(fields);
        }
        self.sequence += 1;
        out.push(typed_frame(kind, &Value::Object(data)));
    }

    fn response(&self, status: &str, output: Vec<Value>, usage: Value, extra: Value) -> Value {
        let mut response = json!({
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "error": null, "incomplete_details": null, "instructions": null,
            "max_output_tokens": null, "model": self.model, "output": output,
            "parallel_tool_calls": true, "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null}, "store": false, "temperature": null,
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [],
            "top_p": null, "truncation": "disabled", "usage": usage, "metadata": {},
        });
        if let (Value::Object(response), Value::Object(extra)) = (&mut response, extra) {
            response.extend(extra);
        }
        response
    }

    fn start(&mut self, chunk: &ChatCompletionChunk<'_>, out: &mut Frames) {
        if self.started {
            return;
        }
        self.started = true;
        self.created = chunk.created;
        self.model = chunk.model.clone().into_owned();
        let response = self.response("in_progress", Vec::new(), Value::Null, Value::Null);
        self.emit(
            "response.created",
            json!({"response": response.clone()}),
            out,
        );
        self.emit("response.in_progress", json!({"response": response}), out);
    }

    fn output_index(&self) -> usize {
        self.output.len()
    }

    /// Closes the open item: its `*.done` events, then `output_item.done`.
    fn close(&mut self, out: &mut Frames) {
        let Some(item) = self.open.take() else {
            return;
        };
        let output_index = self.output_index();
        let done = match item {
            OpenItem::Message { id, text, refusal } => {
                let (kind, part) = if refusal {
                    (
                        "response.refusal.done",
                        json!({"type": "refusal", "refusal": text}),
                    )
                } else {
                    (
                        "response.output_text.done",
                        json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []}),
                    )
                };
                let mut fields =
                    json!({"item_id": id, "output_index": output_index, "content_index": 0});
                if refusal {
                    fields["refusal"] = text.clone().into();
                } else {
                    fields["text"] = text.clone().into();
                    fields["logprobs"] = json!([]);
                }
                self.emit(kind, fields, out);
                self.emit(
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": part}),
                    out,
                );
                json!({"id": id, "type": "message", "status": "completed", "role": "assistant", "content": [part]})
            }
            OpenItem::Reasoning {
                id,
                text,
                signature,
            } => {
                let part = json!({"type": "summary_text", "text": text});
                self.emit(
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": output_index, "summary_index": 0, "text": text}),
                    out,
                );
                self.emit(
                    "response.reasoning_summary_part.done",
                    json!({"item_id": id, "output_index": output_index, "summary_index": 0, "part": part}),
                    out,
                );
                reasoning_item(id, vec![part], signature)
            }
            OpenItem::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => {
                self.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": output_index, "name": name, "arguments": arguments}),
                    out,
                );
                json!({"id": id, "type": "function_call", "status": "completed", "call_id": call_id, "name": name, "arguments": arguments})
            }
        };
        self.emit(
            "response.output_item.done",
            json!({"output_index": output_index, "item": done}),
            out,
        );
        self.output.push(done);
    }

    fn text(&mut self, delta: &str, refusal: bool, out: &mut Frames) {
        let open =
            matches!(&self.open, Some(OpenItem::Message { refusal: r, .. }) if *r == refusal);
        if !open {
            self.close(out);
            let id = super::new_id("msg_");
            let output_index = self.output_index();
            self.emit(
                "response.output_item.added",
                json!({"output_index": output_index, "item": {"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
                out,
            );
            let part = if refusal {
                json!({"type": "refusal", "refusal": ""})
            } else {
                json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []})
            };
            self.emit(
                "response.content_part.added",
                json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": part}),
                out,
            );
            self.open = Some(OpenItem::Message {
                id,
                text: String::new(),
                refusal,
            });
        }
        let output_index = self.output.len();
        let Some(OpenItem::Message { id, text, .. }) = &mut self.open else {
            return;
        };
        text.push_str(delta);
        let kind = if refusal {
            "response.refusal.delta"
        } else {
            "response.output_text.delta"
        };
        out.push(delta_frame(
            &mut self.sequence,
            output_index,
            kind,
            id,
            ",\"content_index\":0",
            delta,
            !refusal,
        ));
    }

    fn reasoning(&mut self, delta: &str, out: &mut Frames) {
        if !matches!(self.open, Some(OpenItem::Reasoning { .. })) {
            self.close(out);
            let id = super::new_id("rs_");
            let output_index = self.output_index();
            self.emit(
                "response.output_item.added",
                json!({"output_index": output_index, "item": {"id": id, "type": "reasoning", "summary": []}}),
                out,
            );
            self.emit(
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": output_index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
                out,
            );
            self.open = Some(OpenItem::Reasoning {
                id,
                text: String::new(),
                signature: None,
            });
        }
        let output_index = self.output.len();
        let Some(OpenItem::Reasoning { id, text, .. }) = &mut self.open else {
            return;
        };
        text.push_str(delta);
        out.push(delta_frame(
            &mut self.sequence,
            output_index,
            "response.reasoning_summary_text.delta",
            id,
            ",\"summary_index\":0",
            delta,
            false,
        ));
    }

    fn call(
        &mut self,
        index: u32,
        call_id: Option<&str>,
        name: Option<&str>,
        delta: &str,
        out: &mut Frames,
    ) {
        let same = matches!(&self.open, Some(OpenItem::Call { index: i, .. }) if *i == index);
        if !same {
            self.close(out);
            let id = super::new_id("fc_");
            let call_id = call_id.map_or_else(|| super::new_id("call_"), str::to_owned);
            let name = name.unwrap_or_default().to_owned();
            let output_index = self.output_index();
            self.emit(
                "response.output_item.added",
                json!({"output_index": output_index, "item": {"id": id, "type": "function_call", "status": "in_progress", "call_id": call_id, "name": name, "arguments": ""}}),
                out,
            );
            self.open = Some(OpenItem::Call {
                id,
                call_id,
                name,
                arguments: String::new(),
                index,
            });
        }
        if delta.is_empty() {
            return;
        }
        let output_index = self.output.len();
        let Some(OpenItem::Call { id, arguments, .. }) = &mut self.open else {
            return;
        };
        arguments.push_str(delta);
        out.push(delta_frame(
            &mut self.sequence,
            output_index,
            "response.function_call_arguments.delta",
            id,
            "",
            delta,
            false,
        ));
    }

    fn usage_json(&self) -> Value {
        match self.usage {
            None => Value::Null,
            Some(c) => usage(c),
        }
    }
}

/// Responses usage from the standard counts.
pub(super) fn usage(c: Counts) -> Value {
    json!({
        "input_tokens": c.prompt,
        "input_tokens_details": {"cached_tokens": c.cached},
        "output_tokens": c.completion,
        "output_tokens_details": {"reasoning_tokens": c.reasoning},
        "total_tokens": c.total,
    })
}

/// The terminal status for a finish reason, and its `incomplete_details`.
pub(super) fn terminal(finish: Option<&str>) -> (&'static str, Value) {
    match finish {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

impl ApiRenderer for ResponsesRenderer {
    fn chunk(&mut self, chunk: &ChatCompletionChunk<'_>, out: &mut Frames) {
        if self.ended {
            return;
        }
        self.start(chunk, out);
        if let Some(usage) = &chunk.usage {
            self.usage = Some(Counts::read(usage));
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(delta) = &choice.delta {
                if let Some(text) = delta.reasoning_content.as_deref().filter(|t| !t.is_empty()) {
                    self.reasoning(text, out);
                }
                if let Some(signature) = delta.reasoning_signature.as_deref() {
                    if let Some(OpenItem::Reasoning {
                        signature: slot, ..
                    }) = &mut self.open
                    {
                        slot.get_or_insert_with(String::new).push_str(signature);
                    }
                }
                if let Some(text) = delta.refusal.as_deref().filter(|t| !t.is_empty()) {
                    self.text(text, true, out);
                }
                if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
                    self.text(text, false, out);
                }
                for call in &delta.tool_calls {
                    let function = call.function.as_ref();
                    self.call(
                        call.index,
                        call.id.as_deref(),
                        function.and_then(|f| f.name.as_deref()),
                        function
                            .and_then(|f| f.arguments.as_deref())
                            .unwrap_or_default(),
                        out,
                    );
                }
            }
            if let Some(finish) = &choice.finish_reason {
                self.finish = Some(finish.clone().into_owned());
            }
        }
    }

    fn done(&mut self, out: &mut Frames) {
        if self.ended {
            return;
        }
        if !self.started {
            // An empty stream: still a well-formed response.
            self.start(&empty_chunk(), out);
        }
        self.close(out);
        self.ended = true;
        let (status, details) = terminal(self.finish.as_deref());
        let output = std::mem::take(&mut self.output);
        let response = self.response(
            status,
            output,
            self.usage_json(),
            json!({"incomplete_details": details}),
        );
        self.emit(
            &format!("response.{status}"),
            json!({"response": response}),
            out,
        );
    }

    fn error(&mut self, error: &ErrorInfo, out: &mut Frames) {
        if self.ended {
            return;
        }
        if !self.started {
            self.start(&empty_chunk(), out);
        }
        self.ended = true;
        let sequence_number = self.sequence;
        out.push(crate::standard::responses_error_frame(
            sequence_number,
            &error.kind,
            &error.code,
            &error.message,
        ));
        self.sequence += 1;
        // What was streamed is kept in the failed response, the open item as incomplete.
        if let Some(open) = self.open.take() {
            self.output.push(match open {
                OpenItem::Message { id, text, refusal } => {
                    let part = if refusal {
                        json!({"type": "refusal", "refusal": text})
                    } else {
                        json!({"type": "output_text", "text": text, "annotations": []})
                    };
                    json!({"id": id, "type": "message", "status": "incomplete", "role": "assistant", "content": [part]})
                }
                OpenItem::Reasoning {
                    id,
                    text,
                    signature,
                } => reasoning_item(
                    id,
                    vec![json!({"type": "summary_text", "text": text})],
                    signature,
                ),
                OpenItem::Call {
                    id,
                    call_id,
                    name,
                    arguments,
                    ..
                } => {
                    json!({"id": id, "type": "function_call", "status": "incomplete", "call_id": call_id, "name": name, "arguments": arguments})
                }
            });
        }
        let output = std::mem::take(&mut self.output);
        let response = self.response(
            "failed",
            output,
            self.usage_json(),
            json!({"error": {"code": error.code, "message": error.message}}),
        );
        self.emit("response.failed", json!({"response": response}), out);
    }
}

fn empty_chunk() -> ChatCompletionChunk<'static> {
    ChatCompletionChunk {
        id: "".into(),
        object: "chat.completion.chunk".into(),
        created: crate::standard::write::unix_now(),
        model: "".into(),
        choices: Vec::new(),
        usage: None,
    }
}

/// A delta event, written directly (the per-event path): `kind` with the item, the output
/// index, `position` (`"content_index":0`, `"summary_index":0`, or nothing) and the delta
/// text; `logprobs: []` for output text. Takes the next sequence number.
fn delta_frame(
    sequence: &mut u64,
    output_index: usize,
    kind: &str,
    item_id: &str,
    position: &str,
    delta: &str,
    logprobs: bool,
) -> bytes::Bytes {
    let mut frame = Vec::with_capacity(160 + kind.len() * 2 + delta.len());
    frame.extend_from_slice(b"event: ");
    frame.extend_from_slice(kind.as_bytes());
    frame.extend_from_slice(b"\ndata: {\"type\":\"");
    frame.extend_from_slice(kind.as_bytes());
    frame.extend_from_slice(b"\",\"sequence_number\":");
    push_int(&mut frame, *sequence);
    frame.extend_from_slice(b",\"item_id\":");
    push_json_str(&mut frame, item_id);
    frame.extend_from_slice(b",\"output_index\":");
    push_int(&mut frame, output_index);
    frame.extend_from_slice(position.as_bytes());
    frame.extend_from_slice(b",\"delta\":");
    push_json_str(&mut frame, delta);
    if logprobs {
        frame.extend_from_slice(b",\"logprobs\":[]");
    }
    frame.extend_from_slice(b"}\n\n");
    *sequence += 1;
    bytes::Bytes::from(frame)
}

/// A reasoning item; the provider's signature, when there is one, as `encrypted_content`.
pub(super) fn reasoning_item(id: String, summary: Vec<Value>, signature: Option<String>) -> Value {
    let mut item = json!({"id": id, "type": "reasoning", "summary": summary});
    if let Some(signature) = signature {
        item["encrypted_content"] = signature.into();
    }
    item
}
