//! The usage-to-last-chunk state machine: canonical frames in, canonical frames out, no I/O.

use crate::standard::Frames;
use crate::standard::data_frame;
use crate::standard::frame::{is_error_data, untyped_data};
use crate::standard::json::{self, compact_raw, for_each_element, is_empty_raw, raw_string};
use crate::standard::probe::{Needle, Needles, Value as Follows};
use crate::standard::report::{Report, USAGE_ONLY_KEYS};
use crate::standard::write::push_int;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// Moves usage and finish reasons of a chat or text completion stream into exactly one last
/// chunk before `[DONE]`.
///
/// Feed it one canonical frame at a time ([`on_frame`](Self::on_frame)); it appends what the
/// client should receive. Frames that carry neither a non-null `finish_reason` nor a `usage`
/// object pass through untouched without being parsed (one probe for their keys decides; the
/// first one is read only for its kind and the fields every chunk repeats); the others are
/// rewritten: `usage` removed (remembered, the last report wins: vLLM and Gemini send running
/// totals), finish reasons set to `null` (remembered per choice), choices left with an empty
/// delta dropped, chunks left with no choice dropped. At `[DONE]` it emits the final chunk,
/// every choice with `delta: {}` and its finish reason, plus `usage` when the upstream
/// reported any (never invented), then `[DONE]`.
///
/// Error events pass through and end the stream: no final chunk, no `[DONE]`. Frames that are
/// not chat or completion chunks (comments, typed events such as the Responses API's) pass
/// through untouched, and so does a whole stream whose first JSON event is not a chat or
/// completion chunk (speech and transcription streams: their usage stays in their own
/// `*.done` event).
#[derive(Debug, Default)]
pub struct ChatNormalizer {
    /// Decided by the first JSON event: chat/completion chunks, or something else (audio,
    /// Responses events) that passes through untouched.
    kind: StreamKind,
    head: Option<Head>,
    finish_reasons: BTreeMap<u64, Value>,
    seen_choices: BTreeSet<u64>,
    /// The last usage report, as the final chunk writes it.
    usage: Option<Box<RawValue>>,
    ended: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    #[default]
    Unknown,
    Chat,
    Other,
}

/// The fields every chunk repeats, taken from the first one, as the final chunk writes them.
#[derive(Debug)]
struct Head {
    /// `"id":…,"object":…,` up to `system_fingerprint`: each field that is present and not
    /// null, a comma after each.
    json: Vec<u8>,
    text_completion: bool,
}

/// The keys of [`Head`], in the order they are written.
const HEAD_KEYS: [&str; 5] = ["id", "object", "created", "model", "system_fingerprint"];

impl Head {
    fn push_field(json: &mut Vec<u8>, key: &str, value: &[u8]) {
        json.push(b'"');
        json.extend_from_slice(key.as_bytes());
        json.extend_from_slice(b"\":");
        json.extend_from_slice(value);
        json.push(b',');
    }

    fn from_map(chunk: &Map<String, Value>) -> Head {
        let mut json = Vec::new();
        for key in HEAD_KEYS {
            if let Some(value) = chunk.get(key).filter(|v| !v.is_null()) {
                let text = serde_json::to_vec(value).unwrap_or_default();
                Head::push_field(&mut json, key, &text);
            }
        }
        let text_completion =
            chunk.get("object").and_then(Value::as_str) == Some("text_completion");
        Head {
            json,
            text_completion,
        }
    }

    fn from_first(first: &FirstChunk<'_>) -> Head {
        let mut json = Vec::new();
        let fields = [
            first.id,
            first.object,
            first.created,
            first.model,
            first.system_fingerprint,
        ];
        for (key, value) in HEAD_KEYS.into_iter().zip(fields) {
            if let Some(value) = value.filter(|v| v.get() != "null") {
                Head::push_field(&mut json, key, value.get().as_bytes());
            }
        }
        Head {
            json,
            text_completion: first.object_is("text_completion"),
        }
    }
}

/// What the first event of a stream must tell without a full parse: whether it is a chat or
/// completion chunk, and its [`Head`] fields (their JSON text, borrowed).
#[derive(Deserialize)]
struct FirstChunk<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    created: Option<&'a RawValue>,
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    system_fingerprint: Option<&'a RawValue>,
    #[serde(default, borrow)]
    choices: Option<&'a RawValue>,
    /// An `error` key (`null` included, as on the full path): the full path decides.
    #[serde(default)]
    error: Present,
}

/// Whether a key is there, whatever its value (`null` included).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(value: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(value).map(|_| Present(true))
    }
}

/// A choice's index, the rest skipped.
#[derive(Deserialize)]
struct ChoiceIndex<'a> {
    #[serde(default, borrow)]
    index: Option<&'a RawValue>,
}

impl FirstChunk<'_> {
    fn object_is(&self, name: &str) -> bool {
        self.object
            .and_then(raw_string)
            .is_some_and(|object| object == name)
    }

    fn is_chat(&self) -> bool {
        self.choices.is_some()
            || self.object_is("chat.completion.chunk")
            || self.object_is("text_completion")
    }
}

/// The keys of the chunks that report (a finish reason that is not `null`, a usage object,
/// Groq's usage), however the JSON is written: only those are rewritten, as the full path
/// would (it takes any finish reason that is not `null`). A chunk with an escape that may
/// hide one of them is parsed too.
fn reports() -> &'static Needles {
    static NEEDLES: OnceLock<Needles> = OnceLock::new();
    NEEDLES.get_or_init(|| {
        Needles::new(&[
            Needle::Key(b"\"finish_reason\"", Follows::NotNull),
            Needle::Key(b"\"usage\"", Follows::Starts(b'{')),
            Needle::Key(b"\"x_groq\"", Follows::Any),
        ])
    })
}

fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// A delta (or text choice) with nothing in it but its role.
fn carries_nothing(choice: &Map<String, Value>) -> bool {
    let delta_empty = match choice.get("delta") {
        Some(Value::Object(delta)) => delta.iter().all(|(k, v)| k == "role" || is_empty_value(v)),
        Some(other) => is_empty_value(other),
        None => true,
    };
    let text_empty = choice.get("text").is_none_or(is_empty_value);
    let logprobs_empty = choice.get("logprobs").is_none_or(is_empty_value);
    delta_empty && text_empty && logprobs_empty
}

impl ChatNormalizer {
    /// A normalizer for one stream.
    #[must_use]
    pub fn new() -> Self {
        ChatNormalizer::default()
    }

    /// Whether the stream has ended (`[DONE]` or an error event was seen).
    #[must_use]
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// Takes one canonical frame; appends what the client receives to `out`.
    pub fn on_frame(&mut self, frame: Bytes, out: &mut Frames) {
        if self.ended {
            return; // nothing follows [DONE] or an error
        }
        let Some(data) = untyped_data(&frame) else {
            // A typed error ends a chat stream; in a Responses stream typed events are not
            // ours (and `response.failed` may follow its `error`).
            if self.kind == StreamKind::Chat && frame.starts_with(b"event: error\n") {
                self.ended = true;
            }
            out.push(frame); // comments, typed events: not ours
            return;
        };
        if self.kind == StreamKind::Other {
            if data == b"[DONE]" || is_error_data(data) {
                self.ended = true;
            }
            out.push(frame);
            return;
        }
        if data == b"[DONE]" {
            self.finish(out);
            return;
        }
        if is_error_data(data) {
            self.ended = true;
            out.push(frame);
            return;
        }
        let needs_rewrite = reports().any_in(data);
        if !needs_rewrite && self.kind == StreamKind::Chat {
            out.push(frame);
            return;
        }
        if !needs_rewrite {
            // The first JSON event, with nothing to rewrite: what kind of stream, and the
            // head fields, without building a map. (An error, duplicate keys or anything
            // odd: the full parse below decides.)
            let object = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
            if let Some(first) = object
                .then(|| json::parse::<FirstChunk>(data).ok())
                .flatten()
                .filter(|first| !first.error.0)
            {
                if first.is_chat() {
                    self.kind = StreamKind::Chat;
                    self.head = Some(Head::from_first(&first));
                    self.see_choices(first.choices);
                } else {
                    self.kind = StreamKind::Other;
                }
                out.push(frame);
                return;
            }
        }
        if self.drop_report(data) {
            return;
        }
        let Ok(Value::Object(mut chunk)) = json::parse::<Value>(data) else {
            out.push(frame); // not JSON: the dialect's business, not ours
            return;
        };
        if chunk.contains_key("error") {
            self.ended = true;
            out.push(frame);
            return;
        }
        let first_event = self.kind == StreamKind::Unknown;
        if first_event {
            let chat = chunk.contains_key("choices")
                || matches!(
                    chunk.get("object").and_then(Value::as_str),
                    Some("chat.completion.chunk" | "text_completion")
                );
            if !chat {
                // Audio (speech.audio.*, transcript.text.*) or other typed JSON events.
                self.kind = StreamKind::Other;
                out.push(frame);
                return;
            }
            self.kind = StreamKind::Chat;
        }
        self.remember_head(&chunk);
        let mut rewritten = false;
        if chunk.get("usage").is_some_and(Value::is_object) {
            self.remember_usage(chunk.remove("usage"));
            rewritten = true;
        }
        if let Some(Value::Object(groq)) = chunk.get_mut("x_groq") {
            if groq.get("usage").is_some_and(Value::is_object) {
                self.remember_usage(groq.remove("usage"));
                rewritten = true;
            }
        }
        let mut had_choices = false;
        let mut has_choices = false;
        if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
            had_choices = !choices.is_empty();
            for choice in choices.iter_mut() {
                let Value::Object(choice) = choice else {
                    continue;
                };
                let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
                if let Some(reason) = choice.get_mut("finish_reason").filter(|r| !r.is_null()) {
                    self.finish_reasons.insert(index, std::mem::take(reason));
                    rewritten = true;
                }
            }
            if rewritten {
                let seen = &mut self.seen_choices;
                choices.retain(|choice| {
                    let Value::Object(choice) = choice else {
                        return true;
                    };
                    let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
                    // The first delta of a choice carries its role: that is something.
                    let first = !seen.contains(&index)
                        && choice.get("delta").and_then(|d| d.get("role")).is_some();
                    first || !carries_nothing(choice)
                });
            }
            // The choices that reach the client count as seen when the chunk is rewritten or
            // is the first one: a chunk that passes as it came is read here only when an
            // escape may hide a key (without one it is not parsed, its choices not counted),
            // and the answer must not depend on that.
            if rewritten || first_event {
                for choice in choices.iter() {
                    if let Some(index) = choice.get("index").and_then(Value::as_u64) {
                        self.seen_choices.insert(index);
                    }
                }
            }
            has_choices = !choices.is_empty();
        }
        if !rewritten {
            out.push(frame);
            return;
        }
        if (had_choices && !has_choices) || (!had_choices && is_usage_only(&chunk)) {
            return; // nothing left for the client
        }
        out.push(data_frame(&Value::Object(chunk)));
    }

    /// Remembers the indexes of the choices of a chunk that passed through as it came.
    fn see_choices(&mut self, choices: Option<&RawValue>) {
        let Some(choices) = choices else { return };
        for_each_element(choices.get(), |choice| {
            let index = serde_json::from_str::<ChoiceIndex>(choice.get()).ok();
            if let Some(index) = index.and_then(|c| c.index?.get().parse().ok()) {
                self.seen_choices.insert(index);
            }
            true
        });
    }

    fn remember_usage(&mut self, usage: Option<Value>) {
        if let Some(raw) = usage.and_then(|u| serde_json::value::to_raw_value(&u).ok()) {
            self.usage = Some(raw);
        }
    }

    /// The usual rewrite without building a map: a chunk that only reports finish reasons
    /// and/or usage, which the full path below would drop whole (OpenAI's finish chunk and
    /// usage chunk). Remembers what it reports and returns `true`; returns `false`, having
    /// changed nothing, for anything else (anything odd included): the full path decides.
    fn drop_report(&mut self, data: &[u8]) -> bool {
        if self.kind != StreamKind::Chat || self.head.is_none() {
            return false;
        }
        let Some(report) = Report::read(data, &self.seen_choices) else {
            return false;
        };
        let usage = match report.usage {
            Some(raw) if raw.get().starts_with('{') => Some(raw),
            Some(raw) if !is_empty_raw(raw) => return false,
            _ => None,
        };
        let reasons = report.reasons;
        // Without choices, only a chunk with nothing else in it is dropped.
        let dropped = report.had_choices || !report.keeps_something;
        if !dropped || (usage.is_none() && reasons.is_empty()) {
            return false;
        }
        // Read before anything is remembered, so that `false` still means nothing changed.
        let Ok(reasons) = reasons
            .into_iter()
            .map(|(index, reason)| Ok((index, serde_json::from_str::<Value>(reason.get())?)))
            .collect::<Result<Vec<_>, serde_json::Error>>()
        else {
            return false;
        };
        self.finish_reasons.extend(reasons);
        if let Some(usage) = usage {
            self.usage = Some(compact_raw(usage));
        }
        true
    }

    fn remember_head(&mut self, chunk: &Map<String, Value>) {
        if self.head.is_none() {
            self.head = Some(Head::from_map(chunk));
        }
    }

    fn finish(&mut self, out: &mut Frames) {
        self.ended = true;
        let head = self.head.take().unwrap_or(Head {
            json: Vec::new(),
            text_completion: false,
        });
        let mut reasons = std::mem::take(&mut self.finish_reasons);
        if reasons.is_empty() {
            // The upstream said [DONE] without a reason: it stopped normally.
            reasons.insert(0, Value::from("stop"));
        }
        // Written as the compact serializer writes the same map (keys in this order).
        let mut last = Vec::with_capacity(head.json.len() + 128);
        last.extend_from_slice(b"data: {");
        last.extend_from_slice(&head.json);
        last.extend_from_slice(b"\"choices\":[");
        for (i, (index, reason)) in reasons.iter().enumerate() {
            if i > 0 {
                last.push(b',');
            }
            last.extend_from_slice(b"{\"index\":");
            push_int(&mut last, *index);
            last.extend_from_slice(if head.text_completion {
                b",\"text\":\"\",\"finish_reason\":"
            } else {
                b",\"delta\":{},\"finish_reason\":"
            });
            serde_json::to_writer(&mut last, reason).unwrap_or_default();
            last.push(b'}');
        }
        last.push(b']');
        if let Some(usage) = self.usage.take() {
            last.extend_from_slice(b",\"usage\":");
            last.extend_from_slice(usage.get().as_bytes());
        }
        last.extend_from_slice(b"}\n\n");
        out.push(Bytes::from(last));
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }
}

/// A chunk that carried only usage (OpenAI's `choices: []` usage chunk).
fn is_usage_only(chunk: &Map<String, Value>) -> bool {
    chunk
        .iter()
        .all(|(k, v)| USAGE_ONLY_KEYS.contains(&k.as_str()) || is_empty_value(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames out for `frames` (`data:` payloads). With `full_path_only`, every frame but
    /// the first has its first key escaped (`{"id"` becomes `{"\u0069d"`): the same JSON,
    /// which the quick path declines (it reads keys borrowed), so the full path decides; the
    /// output is compared after the escape is undone and JSON written compactly again.
    fn run(frames: &[&str], full_path_only: bool) -> Vec<String> {
        let mut normalizer = ChatNormalizer::default();
        let mut out = Frames::new();
        for (n, frame) in frames.iter().enumerate() {
            let frame = if full_path_only && n > 0 {
                escape_first_key(frame)
            } else {
                (*frame).to_owned()
            };
            normalizer.on_frame(Bytes::from(format!("data: {frame}\n\n")), &mut out);
        }
        std::iter::from_fn(|| out.pop())
            .map(|f| canonical(std::str::from_utf8(&f).unwrap()))
            .collect()
    }

    fn escape_first_key(frame: &str) -> String {
        match frame.strip_prefix("{\"") {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphanumeric()) => {
                let first = rest.as_bytes()[0];
                format!("{{\"\\u{first:04x}{}", &rest[1..])
            }
            _ => frame.to_owned(),
        }
    }

    /// A frame with any escaped first key undone and its JSON data written compactly.
    fn canonical(frame: &str) -> String {
        let Some(data) = frame
            .strip_prefix("data: ")
            .and_then(|d| d.strip_suffix("\n\n"))
        else {
            return frame.to_owned();
        };
        let data = match data.strip_prefix("{\"\\u00") {
            Some(rest) => {
                let code = u8::from_str_radix(&rest[..2], 16).unwrap();
                format!("{{\"{}{}", code as char, &rest[2..])
            }
            None => data.to_owned(),
        };
        match serde_json::from_str::<Value>(&data) {
            Ok(value) => format!("data: {value}\n\n"),
            Err(_) => format!("data: {data}\n\n"),
        }
    }

    const FIRST: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
    const CONTENT: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#;

    /// A JSON value that is empty (`null`, `""`, `[]`, `{}`) or not.
    fn small_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just("null".to_owned()),
            Just("\"\"".to_owned()),
            Just("[]".to_owned()),
            Just("{ }".to_owned()),
            Just("\"x\"".to_owned()),
            Just("0".to_owned()),
            Just("[null]".to_owned()),
            Just("{\"a\":1}".to_owned()),
        ]
    }

    /// `key:value`, or nothing.
    fn field(key: &str, value: Option<String>) -> Option<String> {
        value.map(|v| format!("\"{key}\":{v}"))
    }

    /// Object text from present fields; with `repeat`, its first field twice.
    fn object(fields: Vec<Option<String>>, repeat: bool) -> String {
        let mut fields: Vec<String> = fields.into_iter().flatten().collect();
        if repeat && !fields.is_empty() {
            fields.push(fields[0].clone());
        }
        format!("{{{}}}", fields.join(","))
    }

    /// A choice of a reporting chunk: each of index, delta (an object with role, content,
    /// tool calls, or another value), finish reason, text, logprobs and an extra field
    /// present or not; now and then a repeated field or an index that is not a number.
    fn choice() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let index = prop_oneof![
            4 => (0u8..3).prop_map(|i| i.to_string()),
            1 => Just("1.5".to_owned()),
        ];
        let delta = prop_oneof![
            Just("{}".to_owned()),
            Just("{\"role\":\"assistant\"}".to_owned()),
            Just("{\"role\":\"assistant\",\"content\":\"\"}".to_owned()),
            Just("{\"content\":\"hi\"}".to_owned()),
            Just("{\"tool_calls\":[]}".to_owned()),
            Just("{\"r\\u006fle\":\"assistant\"}".to_owned()),
            small_value(),
        ];
        let reason = prop_oneof![
            Just("\"stop\"".to_owned()),
            Just("\"length\"".to_owned()),
            Just("null".to_owned()),
            Just("7".to_owned()),
        ];
        (
            proptest::option::weighted(0.9, index),
            proptest::option::weighted(0.8, delta),
            proptest::option::weighted(0.9, reason),
            proptest::option::weighted(0.2, small_value()),
            proptest::option::weighted(0.3, small_value()),
            proptest::option::weighted(0.2, small_value()),
            proptest::bool::weighted(0.05),
        )
            .prop_map(|(index, delta, reason, text, logprobs, extra, repeat)| {
                object(
                    vec![
                        field("index", index),
                        field("delta", delta),
                        field("logprobs", logprobs),
                        field("finish_reason", reason),
                        field("text", text),
                        field("extra", extra),
                    ],
                    repeat,
                )
            })
    }

    /// A chunk that may only report: head fields, choices, usage and other fields each
    /// present or not; now and then a repeated field, Groq's field or odd values.
    fn report_chunk() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let choices = prop_oneof![
            9 => prop::collection::vec(choice(), 0..3).prop_map(|c| format!("[{}]", c.join(","))),
            1 => Just("null".to_owned()),
        ];
        let usage = prop_oneof![
            Just("{\"prompt_tokens\":9,\"completion_tokens\":2}".to_owned()),
            Just("{ \"prompt_tokens\" : 9 }".to_owned()),
            Just("null".to_owned()),
            Just("{}".to_owned()),
            Just("3".to_owned()),
        ];
        (
            proptest::option::weighted(0.5, Just("\"chat.completion.chunk\"".to_owned())),
            proptest::option::weighted(0.9, choices),
            proptest::option::weighted(0.5, usage),
            proptest::option::weighted(0.3, small_value()),
            proptest::option::weighted(0.2, small_value()),
            proptest::option::weighted(0.05, Just("{\"id\":\"g\"}".to_owned())),
            proptest::bool::weighted(0.05),
        )
            .prop_map(
                |(object_name, choices, usage, tier, citations, groq, repeat)| {
                    object(
                        vec![
                            field("choices", choices),
                            Some("\"id\":\"c1\"".to_owned()),
                            field("object", object_name),
                            field("usage", usage),
                            field("service_tier", tier),
                            field("citations", citations),
                            field("x_groq", groq),
                        ],
                        repeat,
                    )
                },
            )
    }

    proptest::proptest! {
        /// Whatever a reporting chunk holds, the quick path gives what the full path gives.
        #[test]
        fn any_report_gives_what_the_full_path_gives(
            reports in proptest::collection::vec(report_chunk(), 1..3)
        ) {
            let mut frames = vec![FIRST, CONTENT];
            frames.extend(reports.iter().map(String::as_str));
            frames.push("[DONE]");
            proptest::prop_assert_eq!(run(&frames, false), run(&frames, true), "{:?}", reports);
        }
    }

    /// Reporting chunks of every shape the quick path takes or leaves: the output is the
    /// full path's, and the quick path takes the usual ones.
    #[test]
    fn dropping_a_report_without_a_map_gives_what_the_full_path_gives() {
        let cases: &[(&str, bool)] = &[
            (
                r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
                true,
            ),
            (
                r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0}},"obfuscation":"x"}"#,
                true,
            ),
            (
                r#"{"id":"c1","choices":[{"index":1,"delta":{"content":""},"finish_reason":"length"},{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}"#,
                true,
            ),
            (
                r#"{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":"stop"}]}"#,
                true,
            ),
            (
                r#"{"id":"c1","choices":[],"usage":{ "prompt_tokens" : 9 },"service_tier":"default"}"#,
                true,
            ),
            (
                r#"{"id":"c1","choices":[],"usage":{"note":"caf\u00e9"}}"#,
                true,
            ),
            (
                r#"{"id":"c1","choices":[],"usage":null,"citations":[]}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":9},"citations":["a"]}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[{"index":0,"text":"x","finish_reason":"stop"}]}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[{"index":0,"delta":{},"logprobs":{"content":[]},"finish_reason":"stop"}]}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[{"index":"0","delta":{},"finish_reason":"stop"}]}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[{"index":0,"index":1,"delta":{},"finish_reason":"stop"}]}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[7],"usage":{"prompt_tokens":9}}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[],"usage":{"a":1},"usage":{"b":2}}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[],"x_groq":{"usage":{"prompt_tokens":9}}}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"error":null}"#,
                false,
            ),
            (
                r#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]} trailing"#,
                false,
            ),
            (r#"{"id":"c1","choices":[],"usage":7}"#, false),
        ];
        for (chunk, quick) in cases {
            let frames = [FIRST, CONTENT, chunk, "[DONE]"];
            assert_eq!(run(&frames, false), run(&frames, true), "{chunk}");
            let mut normalizer = ChatNormalizer::new();
            let mut out = Frames::new();
            for frame in &frames[..2] {
                normalizer.on_frame(Bytes::from(format!("data: {frame}\n\n")), &mut out);
            }
            assert_eq!(normalizer.drop_report(chunk.as_bytes()), *quick, "{chunk}");
        }
    }

    /// Upstreams that repeat the role in every delta: the first chunk (which passes through
    /// unparsed) counts as the choice's first delta, so the finish chunk is not kept for it.
    #[test]
    fn a_role_repeated_in_the_finish_chunk_is_not_kept() {
        let finish = r#"{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":"stop"}]}"#;
        for full_path_only in [false, true] {
            let out = run(&[FIRST, CONTENT, finish, "[DONE]"], full_path_only);
            assert_eq!(out.len(), 4, "{out:?}");
            assert!(
                out[2].contains(r#""delta":{},"finish_reason":"stop""#),
                "{out:?}"
            );
        }
    }

    #[test]
    fn raw_usage_is_written_compact() {
        let out = run(
            &[
                FIRST,
                r#"{"id":"c1","choices":[],"usage":{ "prompt_tokens" : 9 }}"#,
                "[DONE]",
            ],
            false,
        );
        assert!(
            out[1].contains(r#""usage":{"prompt_tokens":9}}"#),
            "{out:?}"
        );
    }
}
