//! The stack's answer must not depend on how the upstream's encoder writes JSON: every
//! OpenAI-compatible capture, each event's JSON written again with whitespace after `:` and
//! `,` and around brackets, its keys in another order and some of their characters (and of its
//! string values) as `\u` escapes, gives the same stream as the capture itself, compared event
//! by event as parsed JSON: the same content, the same finish reasons and usage in the last
//! chunk, the same errors.

mod common;

use bytes::Bytes;
use common::script::{Step, frames};
use http::Request;
use proptest::prelude::*;
use serde_json::Value;
use tower::{Layer, ServiceExt};
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::provider::{AnyDialect, Endpoint};

/// Every OpenAI-compatible capture, with its provider and endpoint.
const FIXTURES: &[(&str, Endpoint, &str)] = &[
    (
        "openai",
        Endpoint::ChatCompletions,
        "openai/chat_extra_moderation_chunk.sse",
    ),
    (
        "openai",
        Endpoint::ChatCompletions,
        "openai/chat_finish_length.sse",
    ),
    (
        "openai",
        Endpoint::ChatCompletions,
        "openai/chat_n3_multiple_choices.sse",
    ),
    (
        "openai",
        Endpoint::ChatCompletions,
        "openai/chat_parallel_tool_calls.sse",
    ),
    (
        "openai",
        Endpoint::ChatCompletions,
        "openai/chat_refusal.sse",
    ),
    (
        "openai",
        Endpoint::ChatCompletions,
        "openai/chat_text_include_usage.sse",
    ),
    (
        "openai",
        Endpoint::ChatCompletions,
        "openai/chat_tool_call_include_usage.sse",
    ),
    (
        "openai",
        Endpoint::Completions,
        "openai/completions_legacy_text.sse",
    ),
    ("openai", Endpoint::Speech, "openai/audio_speech_sse.sse"),
    (
        "openai",
        Endpoint::Transcriptions,
        "openai/audio_transcription_stream.sse",
    ),
    (
        "openai",
        Endpoint::Transcriptions,
        "openai/audio_transcription_stream_logprobs.sse",
    ),
    (
        "openai",
        Endpoint::Transcriptions,
        "openai/audio_transcription_diarized_stream.sse",
    ),
    (
        "deepseek",
        Endpoint::ChatCompletions,
        "deepseek/reasoning_content.sse",
    ),
    (
        "groq",
        Endpoint::ChatCompletions,
        "groq/tool_call_x_groq_usage.sse",
    ),
    (
        "groq",
        Endpoint::ChatCompletions,
        "groq/midstream_error_tool_use_failed.sse",
    ),
    (
        "mistral",
        Endpoint::ChatCompletions,
        "mistral/thinking_magistral.sse",
    ),
    (
        "mistral",
        Endpoint::ChatCompletions,
        "mistral/tool_call.sse",
    ),
    (
        "openrouter",
        Endpoint::ChatCompletions,
        "openrouter/midstream_error_with_comments.sse",
    ),
    (
        "openrouter",
        Endpoint::ChatCompletions,
        "openrouter/reasoning_usage_chunk_with_nonempty_choices.sse",
    ),
    (
        "vllm",
        Endpoint::ChatCompletions,
        "vllm/continuous_usage_stats.sse",
    ),
    ("llamacpp", Endpoint::ChatCompletions, "llamacpp/chat.sse"),
];

/// The whole stack (every layer, OpenAI chat client) over one upstream body.
fn run(provider: &str, endpoint: Endpoint, body: Vec<u8>) -> Vec<String> {
    let stack = LlmStreamLayer::new().dialect(AnyDialect::for_provider(provider, endpoint));
    let service = stack.layer(common::script::upstream(
        "text/event-stream",
        vec![Step::Data(Bytes::from(body))],
    ));
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async move {
            let response = service.oneshot(Request::new(())).await.unwrap();
            frames(response.into_body()).await
        })
}

/// One frame as a client compares it: its event type and its data as JSON (or as text:
/// `[DONE]`, comments).
#[derive(Debug, PartialEq)]
enum Seen {
    Event(Option<String>, Value),
    Text(String),
}

fn seen(out: &[String]) -> Vec<Seen> {
    out.iter()
        .map(|frame| {
            let mut event = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(d);
                }
            }
            match data.map(serde_json::from_str::<Value>) {
                Some(Ok(json)) => Seen::Event(event, json),
                _ => Seen::Text(frame.clone()),
            }
        })
        .collect()
}

/// How to write JSON again: the knobs drawn per case, then a small generator for the choices
/// inside one event.
#[derive(Debug, Clone)]
struct Style {
    seed: u64,
    /// Out of 8: how often whitespace goes where it may.
    spaces: u64,
    tabs: bool,
    shuffle: bool,
    /// Out of 16: how often a character of a key is escaped.
    escape_keys: u64,
    /// Out of 64: how often a character of a string value is escaped.
    escape_values: u64,
    /// Hex digits of escapes in upper case.
    upper_hex: bool,
}

fn style() -> impl Strategy<Value = Style> {
    (
        any::<u64>(),
        0u64..=8,
        any::<bool>(),
        any::<bool>(),
        0u64..=16,
        prop_oneof![Just(0u64), 0u64..=64],
        any::<bool>(),
    )
        .prop_map(
            |(seed, spaces, tabs, shuffle, escape_keys, escape_values, upper_hex)| Style {
                seed,
                spaces,
                tabs,
                shuffle,
                escape_keys,
                escape_values,
                upper_hex,
            },
        )
}

/// splitmix64: the choices inside one case, from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Writer<'a> {
    style: &'a Style,
    rng: Rng,
    out: String,
}

impl Writer<'_> {
    /// JSON whitespace (spaces and tabs: an SSE data line has no line breaks), or none.
    fn space(&mut self) {
        if self.rng.below(8) < self.style.spaces {
            for _ in 0..=self.rng.below(3) {
                let tab = self.style.tabs && self.rng.below(2) == 0;
                self.out.push(if tab { '\t' } else { ' ' });
            }
        }
    }

    /// A string, each ASCII character escaped as `\uXXXX` with `chance` out of `of`.
    fn string(&mut self, text: &str, chance: u64, of: u64) {
        self.out.push('"');
        for c in text.chars() {
            let plain = c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\';
            if plain && self.rng.below(of) < chance {
                let code = c as u32;
                if self.style.upper_hex {
                    self.out.push_str(&format!("\\u{code:04X}"));
                } else {
                    self.out.push_str(&format!("\\u{code:04x}"));
                }
            } else {
                let quoted = serde_json::to_string(&c.to_string()).unwrap();
                self.out.push_str(&quoted[1..quoted.len() - 1]);
            }
        }
        self.out.push('"');
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                if self.style.shuffle {
                    for i in (1..entries.len()).rev() {
                        let j = self.rng.below(i as u64 + 1) as usize;
                        entries.swap(i, j);
                    }
                }
                self.out.push('{');
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    self.space();
                    if i > 0 {
                        self.out.push(',');
                        self.space();
                    }
                    self.string(key, self.style.escape_keys, 16);
                    self.space();
                    self.out.push(':');
                    self.space();
                    self.value(value);
                }
                self.space();
                self.out.push('}');
            }
            Value::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    self.space();
                    if i > 0 {
                        self.out.push(',');
                        self.space();
                    }
                    self.value(item);
                }
                self.space();
                self.out.push(']');
            }
            Value::String(text) => self.string(text, self.style.escape_values, 64),
            other => self.out.push_str(&other.to_string()),
        }
    }
}

/// The capture with each event's JSON data written again in `style` (the `n`th event with
/// the generator's seed moved on by `n`); every other line as it was.
fn reformat(raw: &[u8], style: &Style) -> Vec<u8> {
    let text = std::str::from_utf8(raw).unwrap();
    let mut out = String::with_capacity(text.len() * 2);
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let payload = body
            .strip_prefix("data:")
            .map(|p| p.strip_prefix(' ').unwrap_or(p));
        match payload.and_then(|p| serde_json::from_str::<Value>(p).ok()) {
            Some(json) => {
                let mut writer = Writer {
                    style,
                    rng: Rng(style.seed ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)),
                    out: String::from("data: "),
                };
                writer.space(); // before the value: still JSON
                writer.value(&json);
                writer.space();
                out.push_str(&writer.out);
                out.push_str(ending);
            }
            None => out.push_str(line),
        }
    }
    out.into_bytes()
}

/// The stack's output for each capture as it is, computed once.
fn originals() -> &'static Vec<Vec<Seen>> {
    static ORIGINALS: std::sync::OnceLock<Vec<Vec<Seen>>> = std::sync::OnceLock::new();
    ORIGINALS.get_or_init(|| {
        FIXTURES
            .iter()
            .map(|(provider, endpoint, path)| {
                seen(&run(provider, *endpoint, common::fixture(path)))
            })
            .collect()
    })
}

/// The reformatting keeps every event the same JSON, and the captures' streams are complete.
#[test]
fn the_captures_and_the_reformatting_are_sound() {
    let style = Style {
        seed: 7,
        spaces: 8,
        tabs: true,
        shuffle: true,
        escape_keys: 8,
        escape_values: 8,
        upper_hex: false,
    };
    for ((_, _, path), original) in FIXTURES.iter().zip(originals()) {
        let raw = common::fixture(path);
        let json = |raw: &[u8]| -> Vec<Value> {
            common::events(vec![Bytes::copy_from_slice(raw)])
                .into_iter()
                .filter_map(|e| serde_json::from_str(&e.data).ok())
                .collect()
        };
        let reformatted = reformat(&raw, &style);
        assert_ne!(reformatted, raw, "{path}");
        assert_eq!(json(&reformatted), json(&raw), "{path}");
        assert!(!original.is_empty(), "{path}");
        let ended = matches!(original.last(), Some(Seen::Text(t)) if t == "data: [DONE]\n\n")
            || matches!(original.last(), Some(Seen::Event(_, e)) if e.get("error").is_some());
        assert!(ended, "{path}: {:?}", original.last());
    }
}

/// A finish reason written `"finish_reason": "length"` is the stream's finish reason (it was
/// missed: the client got the upstream's chunk, then a last chunk saying `stop`).
#[test]
fn a_finish_reason_after_a_space_is_the_last_chunks() {
    let raw = String::from_utf8(common::fixture("openai/chat_finish_length.sse"))
        .unwrap()
        .replace(
            "\"finish_reason\":\"length\"",
            "\"finish_reason\": \"length\"",
        );
    let out = seen(&run("openai", Endpoint::ChatCompletions, raw.into_bytes()));
    let reasons: Vec<&Value> = out
        .iter()
        .filter_map(|s| match s {
            Seen::Event(_, chunk) => chunk["choices"][0].get("finish_reason"),
            Seen::Text(_) => None,
        })
        .filter(|r| !r.is_null())
        .collect();
    assert_eq!(reasons, [&Value::from("length")], "{out:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(48)))]

    #[test]
    fn any_json_formatting_gives_the_same_stream(style in style()) {
        for ((provider, endpoint, path), original) in FIXTURES.iter().zip(originals()) {
            let raw = reformat(&common::fixture(path), &style);
            let out = seen(&run(provider, *endpoint, raw));
            prop_assert_eq!(&out, original, "{} in {:?}", path, style);
        }
    }
}
