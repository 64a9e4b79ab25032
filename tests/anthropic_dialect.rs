//! The Anthropic Messages dialect (with the usage layer) on every Anthropic fixture.

mod common;

use bytes::Bytes;
use common::script::{Step, data};
use proptest::prelude::*;
use serde_json::Value;
use tower_llm_stream::provider::anthropic::AnthropicMessages;

fn run(steps: Vec<Step>) -> Vec<String> {
    common::dialects::run_stack(AnthropicMessages::new(), steps)
}

/// The upstream's own facts, read straight from its events.
#[derive(Debug, Default, PartialEq)]
struct Facts {
    text: String,
    thinking: String,
    tools: Vec<(String, String, String)>, // id, name, arguments
    stop_reason: String,
    input_tokens: u64,
    output_tokens: u64,
    id: String,
    model: String,
}

fn upstream_facts(raw: &[u8]) -> Facts {
    let mut raw = raw.to_vec();
    raw.extend_from_slice(b"\n\n"); // some fixtures were stored without the final blank line
    let mut facts = Facts::default();
    let mut tool_of_block = std::collections::HashMap::new();
    for event in common::events(vec![Bytes::from(raw)]) {
        let v: Value = serde_json::from_str(&event.data).unwrap();
        match v["type"].as_str().unwrap() {
            "message_start" => {
                facts.id = v["message"]["id"].as_str().unwrap().to_owned();
                facts.model = v["message"]["model"].as_str().unwrap().to_owned();
                let u = &v["message"]["usage"];
                facts.input_tokens = u["input_tokens"].as_u64().unwrap()
                    + u["cache_read_input_tokens"].as_u64().unwrap_or(0)
                    + u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                tool_of_block.insert(v["index"].as_u64().unwrap(), facts.tools.len());
                let b = &v["content_block"];
                facts.tools.push((
                    b["id"].as_str().unwrap().into(),
                    b["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => facts.text.push_str(d["text"].as_str().unwrap()),
                    "thinking_delta" => facts.thinking.push_str(d["thinking"].as_str().unwrap()),
                    "input_json_delta" => {
                        let t = tool_of_block[&v["index"].as_u64().unwrap()];
                        facts.tools[t]
                            .2
                            .push_str(d["partial_json"].as_str().unwrap());
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                facts.stop_reason = v["delta"]["stop_reason"].as_str().unwrap().to_owned();
                facts.output_tokens = v["usage"]["output_tokens"].as_u64().unwrap();
            }
            _ => {}
        }
    }
    facts
}

/// What a client of the standard stream sees.
fn client_facts(frames: &[String]) -> (Facts, Vec<Value>) {
    let mut facts = Facts::default();
    let chunks = common::dialects::chat_chunks(frames);
    for chunk in &chunks {
        facts.id = chunk["id"].as_str().unwrap().to_owned();
        facts.model = chunk["model"].as_str().unwrap().to_owned();
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        facts.text.push_str(delta["content"].as_str().unwrap_or(""));
        facts
            .thinking
            .push_str(delta["reasoning_content"].as_str().unwrap_or(""));
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let i = call["index"].as_u64().unwrap() as usize;
            if let Some(id) = call["id"].as_str() {
                assert_eq!(i, facts.tools.len(), "tool indexes count from 0");
                facts.tools.push((
                    id.into(),
                    call["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            facts.tools[i]
                .2
                .push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            facts.stop_reason = reason.to_owned();
        }
        if chunk["usage"].is_object() {
            facts.input_tokens = chunk["usage"]["prompt_tokens"].as_u64().unwrap();
            facts.output_tokens = chunk["usage"]["completion_tokens"].as_u64().unwrap();
        }
    }
    (facts, chunks)
}

fn check(path: &str, cuts: &[usize]) {
    let raw = common::fixture(path);
    let out = run(common::split_at(&raw, cuts)
        .into_iter()
        .map(Step::Data)
        .collect());
    assert_eq!(out.last().unwrap(), "data: [DONE]\n\n", "{path}: {out:?}");
    let (client, chunks) = client_facts(&out);
    let mut expected = upstream_facts(&raw);
    expected.stop_reason = match expected.stop_reason.as_str() {
        "end_turn" | "stop_sequence" => "stop",
        "tool_use" => "tool_calls",
        "max_tokens" => "length",
        "refusal" => "content_filter",
        other => panic!("unmapped {other}"),
    }
    .to_owned();
    assert_eq!(client, expected, "{path}");

    // The standard's shape.
    common::dialects::assert_standard(path, &out);
    let last = chunks.last().unwrap();
    assert_eq!(
        last["usage"]["total_tokens"],
        expected.input_tokens + expected.output_tokens
    );
}

const FIXTURES: &[&str] = &[
    "anthropic/text_minimal.sse",
    "anthropic/thinking_then_text.sse",
    "anthropic/tool_use.sse",
    "anthropic/refusal_sdk_fixture.sse",
];

#[test]
fn every_anthropic_fixture_translates_faithfully() {
    for path in FIXTURES {
        check(path, &[]);
    }
}

#[test]
fn error_events_become_canonical_and_end_the_stream() {
    let out = run(vec![data(concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    ))]);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        out[1],
        "data: {\"error\":{\"type\":\"overloaded_error\",\"code\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
    );
}

#[test]
fn a_stream_without_message_stop_is_truncated() {
    let raw = common::fixture("anthropic/text_minimal.sse");
    let text = String::from_utf8(raw).unwrap();
    let cut = text.find("event: message_stop").unwrap();
    let out = run(vec![data(text[..cut].to_owned())]);
    let last = out.last().unwrap();
    assert!(last.contains("\"code\":\"stream_truncated\""), "{last}");
    assert!(out.iter().all(|f| f != "data: [DONE]\n\n"));
}

#[test]
fn malformed_events_are_errors_not_panics() {
    let out = run(vec![data("event: message_start\ndata: {not json\n\n")]);
    assert!(out[0].contains("\"code\":\"malformed_event\""), "{out:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(32), ..ProptestConfig::default() })]
    #[test]
    fn any_chunking_translates_the_same(cuts in proptest::collection::vec(0usize..20_000, 0..100)) {
        for path in FIXTURES {
            check(path, &cuts);
        }
    }
}
