//! Bedrock ConverseStream: binary AWS event-stream captures (CRC-checked) through the
//! reframer and the Bedrock dialect, against their decoded companions.

mod common;

use bytes::Bytes;
use common::dialects::{Seen, assert_standard, client_view, run_stack_as};
use common::script::{Step, data};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower_llm_stream::eventstream::encode_message;
use tower_llm_stream::provider::bedrock::Bedrock;

const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

fn run(raw: &[u8], cuts: &[usize]) -> Vec<String> {
    let steps = common::split_at(raw, cuts)
        .into_iter()
        .map(Step::Data)
        .collect();
    let (content_type, out) =
        run_stack_as(CONTENT_TYPE, Bedrock::for_model("amazon.nova-micro"), steps);
    assert_eq!(content_type, "text/event-stream");
    out
}

/// What the decoded companion file says the stream contains.
fn decoded_view(name: &str) -> Seen {
    let text =
        String::from_utf8(common::fixture(&format!("bedrock/{name}.decoded.jsonl"))).unwrap();
    let mut seen = Seen::default();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let p = &v["payload"];
        match v["headers"][":event-type"].as_str().unwrap() {
            "contentBlockStart" if p["start"]["toolUse"].is_object() => {
                let t = &p["start"]["toolUse"];
                seen.tools.push((
                    t["toolUseId"].as_str().unwrap().into(),
                    t["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            "contentBlockDelta" => {
                let d = &p["delta"];
                if let Some(t) = d["text"].as_str() {
                    seen.text.entry("content").or_default().push_str(t);
                } else if let Some(t) = d["reasoningContent"]["text"].as_str() {
                    seen.text
                        .entry("reasoning_content")
                        .or_default()
                        .push_str(t);
                } else if let Some(i) = d["toolUse"]["input"].as_str() {
                    seen.tools.last_mut().unwrap().2.push_str(i);
                }
            }
            "messageStop" => {
                seen.finish_reason = match p["stopReason"].as_str().unwrap() {
                    "end_turn" => "stop",
                    "tool_use" => "tool_calls",
                    other => panic!("unexpected {other}"),
                }
                .into();
            }
            "metadata" => {
                let u = &p["usage"];
                let cached = u["cacheReadInputTokens"].as_u64().unwrap_or(0);
                let prompt = u["inputTokens"].as_u64().unwrap()
                    + cached
                    + u["cacheWriteInputTokens"].as_u64().unwrap_or(0);
                seen.usage = json!({
                    "prompt_tokens": prompt,
                    "completion_tokens": u["outputTokens"],
                    "total_tokens": u["totalTokens"],
                    "prompt_tokens_details": {"cached_tokens": cached},
                });
            }
            _ => {}
        }
    }
    seen.text.retain(|_, v| !v.is_empty());
    seen
}

const FIXTURES: &[&str] = &[
    "converse_stream_text",
    "converse_stream_tool_use",
    "converse_stream_reasoning",
];

#[test]
fn every_bedrock_capture_translates_faithfully() {
    for name in FIXTURES {
        let out = run(&common::fixture(&format!("bedrock/{name}.bin")), &[]);
        let chunks = assert_standard(name, &out);
        assert_eq!(chunks[0]["model"], "amazon.nova-micro");
        assert_eq!(client_view(&chunks), decoded_view(name), "{name}");
    }
}

#[test]
fn a_corrupt_byte_is_a_malformed_event() {
    let mut raw = common::fixture("bedrock/converse_stream_text.bin");
    let at = raw.len() / 2;
    raw[at] ^= 0x40;
    let out = run(&raw, &[]);
    let last = out.last().unwrap();
    assert!(
        last.contains("\"code\":\"malformed_event\"") && last.contains("checksum"),
        "{last}"
    );
}

#[test]
fn a_cut_stream_is_truncated() {
    let raw = common::fixture("bedrock/converse_stream_text.bin");
    let out = run(&raw[..raw.len() / 2], &[]);
    assert!(out.last().unwrap().contains("stream_truncated"), "{out:?}");
}

#[test]
fn exceptions_become_error_events() {
    let mut stream = encode_message("messageStart", br#"{"role":"assistant"}"#).to_vec();
    // An exception message: :message-type exception, :exception-type throttlingException.
    let mut headers = Vec::new();
    for (name, value) in [
        (":exception-type", "throttlingException"),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    ] {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7);
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let payload = br#"{"message":"Too many requests, please wait."}"#;
    let total = (16 + headers.len() + payload.len()) as u32;
    let mut message = Vec::new();
    message.extend_from_slice(&total.to_be_bytes());
    message.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    message.extend_from_slice(&crc(&message).to_be_bytes());
    message.extend_from_slice(&headers);
    message.extend_from_slice(payload);
    let sum = crc(&message);
    message.extend_from_slice(&sum.to_be_bytes());
    stream.extend_from_slice(&message);
    let (_, out) = run_stack_as(
        CONTENT_TYPE,
        Bedrock::new(),
        vec![Step::Data(Bytes::from(stream))],
    );
    assert_eq!(
        out.last().unwrap(),
        "data: {\"error\":{\"type\":\"upstream_error\",\"code\":\"throttlingException\",\"message\":\"Too many requests, please wait.\"}}\n\n"
    );
}

/// CRC-32 (IEEE), bit by bit: an independent check of the crate's table version.
fn crc(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn sse_responses_still_pass_for_a_bedrock_dialect() {
    let (content_type, out) = run_stack_as(
        "application/json",
        Bedrock::new(),
        vec![data("{\"message\":\"not streaming\"}")],
    );
    assert_eq!(content_type, "application/json");
    assert_eq!(out, ["{\"message\":\"not streaming\"}"]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(32), ..ProptestConfig::default() })]
    #[test]
    fn any_chunking_translates_the_same(cuts in proptest::collection::vec(0usize..7000, 0..100)) {
        for name in FIXTURES {
            let raw = common::fixture(&format!("bedrock/{name}.bin"));
            let chunks = common::dialects::chat_chunks(&run(&raw, &cuts));
            prop_assert_eq!(client_view(&chunks), decoded_view(name));
        }
    }
}
