//! The Gemini dialect (with the usage layer) on every Gemini fixture.

mod common;

use bytes::Bytes;
use common::script::{Step, data};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower_llm_stream::provider::gemini::Gemini;

fn run(steps: Vec<Step>) -> Vec<String> {
    common::dialects::run_stack(Gemini::new(), steps)
}

#[derive(Debug, Default, PartialEq)]
struct Facts {
    text: String,
    thoughts: String,
    calls: Vec<(String, Value)>,
    finish_reason: String,
    usage: Value,
}

fn upstream_facts(raw: &[u8]) -> Facts {
    let mut facts = Facts::default();
    let mut last_usage = Value::Null;
    for event in common::events(vec![Bytes::copy_from_slice(raw)]) {
        let v: Value = serde_json::from_str(&event.data).unwrap();
        let c = &v["candidates"][0];
        for part in c["content"]["parts"].as_array().into_iter().flatten() {
            if let Some(call) = part.get("functionCall") {
                facts
                    .calls
                    .push((call["name"].as_str().unwrap().into(), call["args"].clone()));
            } else if part["thought"] == true {
                facts.thoughts.push_str(part["text"].as_str().unwrap());
            } else {
                facts.text.push_str(part["text"].as_str().unwrap_or(""));
            }
        }
        if let Some(reason) = c["finishReason"].as_str() {
            facts.finish_reason = match reason {
                "STOP" if !facts.calls.is_empty() => "tool_calls",
                "STOP" => "stop",
                "MAX_TOKENS" => "length",
                other => panic!("unexpected {other}"),
            }
            .into();
        }
        last_usage = v["usageMetadata"].clone();
    }
    let thoughts = last_usage["thoughtsTokenCount"].as_u64();
    let completion =
        last_usage["candidatesTokenCount"].as_u64().unwrap_or(0) + thoughts.unwrap_or(0);
    facts.usage = json!({
        "prompt_tokens": last_usage["promptTokenCount"],
        "completion_tokens": completion,
        "total_tokens": last_usage["totalTokenCount"],
    });
    if let Some(t) = thoughts {
        facts.usage["completion_tokens_details"] = json!({"reasoning_tokens": t});
    }
    facts
}

fn client_facts(out: &[String]) -> (Facts, Vec<Value>) {
    let mut facts = Facts::default();
    let chunks = common::dialects::chat_chunks(out);
    for chunk in &chunks {
        let choice = &chunk["choices"][0];
        facts
            .text
            .push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        facts
            .thoughts
            .push_str(choice["delta"]["reasoning_content"].as_str().unwrap_or(""));
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let args: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
            facts
                .calls
                .push((call["function"]["name"].as_str().unwrap().into(), args));
        }
        if let Some(r) = choice["finish_reason"].as_str() {
            facts.finish_reason = r.into();
        }
        if chunk["usage"].is_object() {
            facts.usage = chunk["usage"].clone();
        }
    }
    (facts, chunks)
}

const FIXTURES: &[&str] = &[
    "gemini/text.sse",
    "gemini/thinking.sse",
    "gemini/usage_every_chunk_thoughts.sse",
    "gemini/function_call.sse",
];

fn check(path: &str, cuts: &[usize]) {
    let raw = common::fixture(path);
    let out = run(common::split_at(&raw, cuts)
        .into_iter()
        .map(Step::Data)
        .collect());
    assert_eq!(out.last().unwrap(), "data: [DONE]\n\n", "{path}: {out:?}");
    let (client, chunks) = client_facts(&out);
    assert_eq!(client, upstream_facts(&raw), "{path}");
    common::dialects::assert_standard(path, &out);
    assert!(!chunks.is_empty());
}

#[test]
fn every_gemini_fixture_translates_faithfully() {
    for path in FIXTURES {
        check(path, &[]);
    }
}

#[test]
fn function_call_then_stop_is_tool_calls() {
    let out = run(vec![Step::Data(Bytes::from(common::fixture(
        "gemini/function_call.sse",
    )))]);
    let (facts, _) = client_facts(&out);
    assert_eq!(facts.finish_reason, "tool_calls");
    assert_eq!(facts.calls[0].0, "get_country");
}

#[test]
fn safety_is_content_filter_and_no_finish_reason_is_truncation() {
    let out = run(vec![data(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},\"finishReason\":\"SAFETY\"}]}\r\n\r\n",
    )]);
    assert!(
        out[out.len() - 2].contains("\"finish_reason\":\"content_filter\""),
        "{out:?}"
    );
    assert!(
        !out[out.len() - 2].contains("usage"),
        "no usage reported, none invented"
    );
    let out = run(vec![data(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}\r\n\r\n",
    )]);
    assert!(out.last().unwrap().contains("stream_truncated"), "{out:?}");
}

#[test]
fn error_objects_become_error_events() {
    let out = run(vec![data(
        "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n",
    )]);
    assert_eq!(
        out,
        [
            "data: {\"error\":{\"type\":\"upstream_error\",\"code\":\"UNAVAILABLE\",\"message\":\"The model is overloaded.\"}}\n\n"
        ]
    );
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
