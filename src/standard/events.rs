//! Typed views of the standard stream's events, for the five endpoints.
//!
//! They borrow the hot strings from the event data (`Cow`: borrowed unless the JSON string had
//! escapes) and keep every field they do not name in `extra`, so nothing a provider adds is
//! lost when an event is read and written back. The layers themselves work on bytes; these
//! types are for applications, tests and tools that want to read the stream.
//!
//! ```
//! use tower_llm_stream::standard::events::ChatCompletionChunk;
//!
//! let data = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",
//!   "choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"service_tier":"default"}"#;
//! let chunk: ChatCompletionChunk = serde_json::from_str(data).unwrap();
//! assert_eq!(chunk.choices[0].delta.as_ref().unwrap().content.as_deref(), Some("Hi"));
//! assert_eq!(chunk.extra["service_tier"], "default"); // unknown fields kept
//! let again: serde_json::Value = serde_json::to_value(&chunk).unwrap();
//! assert_eq!(again["service_tier"], "default");
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A `chat.completion.chunk` or a `text_completion` chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk<'a> {
    /// The same on every chunk of a stream.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// `chat.completion.chunk` or `text_completion`.
    #[serde(borrow)]
    pub object: Cow<'a, str>,
    /// Unix seconds; the same on every chunk.
    pub created: u64,
    /// The upstream model name (without the `provider/` prefix).
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    /// The choices this chunk carries.
    #[serde(borrow)]
    pub choices: Vec<ChunkChoice<'a>>,
    /// Only in the last chunk, and only when the upstream reported usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One choice of a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice<'a> {
    /// The choice's index (`n > 1` streams interleave them).
    pub index: u32,
    /// Chat: what this chunk adds.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub delta: Option<Delta<'a>>,
    /// Text completions: the text this chunk adds.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub text: Option<Cow<'a, str>>,
    /// `null` but in the last chunk: `stop`, `length`, `tool_calls`, `content_filter`.
    #[serde(borrow)]
    pub finish_reason: Option<Cow<'a, str>>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a chat chunk adds to its choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta<'a> {
    /// `assistant`, on the first delta of each choice.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub role: Option<Cow<'a, str>>,
    /// Answer text.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub content: Option<Cow<'a, str>>,
    /// Refusal text.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub refusal: Option<Cow<'a, str>>,
    /// Reasoning or thinking text.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// Tool call fragments.
    #[serde(default, skip_serializing_if = "Vec::is_empty", borrow)]
    pub tool_calls: Vec<ToolCallDelta<'a>>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A fragment of one tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta<'a> {
    /// Counts a choice's tool calls from 0.
    pub index: u32,
    /// On the call's first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub id: Option<Cow<'a, str>>,
    /// `function`, on the call's first fragment.
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "Option::is_none",
        borrow
    )]
    pub kind: Option<Cow<'a, str>>,
    /// The function's name (first fragment) and argument text (any fragment).
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub function: Option<FunctionDelta<'a>>,
    /// Every other field, as sent (`extra_content.google.thought_signature` from Gemini).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A fragment of a function call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDelta<'a> {
    /// The function's name.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub name: Option<Cow<'a, str>>,
    /// A piece of the JSON argument text.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub arguments: Option<Cow<'a, str>>,
}

/// Token usage, OpenAI's shape (details when known).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens (cache reads and writes included).
    pub prompt_tokens: u64,
    /// Output tokens (reasoning included).
    pub completion_tokens: u64,
    /// Their sum, or the upstream's total.
    pub total_tokens: u64,
    /// Every other field (`prompt_tokens_details`, `completion_tokens_details`, costs, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A Responses API event: its type, its place in the stream, and everything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponsesEvent<'a> {
    /// The event type, also the SSE `event:` line.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// Counts from 0 without gaps.
    pub sequence_number: u64,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A speech stream event: `speech.audio.delta` (with `audio`) or `speech.audio.done` (with
/// `usage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechEvent<'a> {
    /// `speech.audio.delta` or `speech.audio.done`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// Base64 audio, on deltas.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub audio: Option<Cow<'a, str>>,
    /// Every other field (`usage` on the done event).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A transcription stream event: `transcript.text.delta` (with `delta` and `text`),
/// `transcript.text.segment`, `transcript.text.done` (with the whole `text` and `usage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptionEvent<'a> {
    /// The event type.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// The new text, on deltas.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub delta: Option<Cow<'a, str>>,
    /// On deltas the same as `delta`; on the done event the whole transcript.
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub text: Option<Cow<'a, str>>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The canonical error event: `{"error":{"type","code","message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent<'a> {
    /// What went wrong.
    #[serde(borrow)]
    pub error: ErrorObject<'a>,
}

/// The error object of an error event or an error response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject<'a> {
    /// The error type, e.g. `timeout_error`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// The stable code, e.g. `stream_idle_timeout`.
    #[serde(borrow)]
    pub code: Cow<'a, str>,
    /// For people.
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}
