//! The Cohere v2 dialect (with the usage layer) on every Cohere fixture.

mod common;

use bytes::Bytes;
use common::dialects::{Seen, assert_standard, client_view, run_stack};
use common::script::{Step, data};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower_llm_stream::provider::cohere::Cohere;

/// The upstream's own facts.
fn upstream_view(raw: &[u8]) -> Seen {
    let mut seen = Seen::default();
    for event in common::events(vec![Bytes::copy_from_slice(raw)]) {
        if event.data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(&event.data).unwrap();
        let m = &v["delta"]["message"];
        match v["type"].as_str().unwrap() {
            "content-delta" => {
                let (field, text) = match m["content"]["text"].as_str() {
                    Some(t) => ("content", t),
                    None => (
                        "reasoning_content",
                        m["content"]["thinking"].as_str().unwrap(),
                    ),
                };
                seen.text.entry(field).or_default().push_str(text);
            }
            "tool-plan-delta" => seen
                .text
                .entry("reasoning_content")
                .or_default()
                .push_str(m["tool_plan"].as_str().unwrap()),
            "tool-call-start" => {
                let c = &m["tool_calls"];
                seen.tools.push((
                    c["id"].as_str().unwrap().into(),
                    c["function"]["name"].as_str().unwrap().into(),
                    c["function"]["arguments"].as_str().unwrap().into(),
                ));
            }
            "tool-call-delta" => seen
                .tools
                .last_mut()
                .unwrap()
                .2
                .push_str(m["tool_calls"]["function"]["arguments"].as_str().unwrap()),
            "message-end" => {
                seen.finish_reason = match v["delta"]["finish_reason"].as_str().unwrap() {
                    "COMPLETE" => "stop",
                    "TOOL_CALL" => "tool_calls",
                    other => panic!("unexpected {other}"),
                }
                .into();
                let u = &v["delta"]["usage"];
                let (p, c) = (
                    u["tokens"]["input_tokens"].as_u64().unwrap(),
                    u["tokens"]["output_tokens"].as_u64().unwrap(),
                );
                seen.usage =
                    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
                if let Some(cached) = u["cached_tokens"].as_u64() {
                    seen.usage["prompt_tokens_details"] = json!({"cached_tokens": cached});
                }
            }
            _ => {}
        }
    }
    seen.text.retain(|_, v| !v.is_empty());
    seen
}

const FIXTURES: &[&str] = &[
    "cohere/text.sse",
    "cohere/tool_call.sse",
    "cohere/reasoning.sse",
];

fn check(path: &str, cuts: &[usize]) {
    let raw = common::fixture(path);
    let out = run_stack(
        Cohere::for_model("command-a"),
        common::split_at(&raw, cuts)
            .into_iter()
            .map(Step::Data)
            .collect(),
    );
    let chunks = assert_standard(path, &out);
    assert_eq!(chunks[0]["model"], "command-a");
    assert_eq!(client_view(&chunks), upstream_view(&raw), "{path}");
}

#[test]
fn every_cohere_fixture_translates_faithfully() {
    for path in FIXTURES {
        check(path, &[]);
    }
}

#[test]
fn no_message_end_is_truncation() {
    let out = run_stack(
        Cohere::new(),
        vec![data(
            "data: {\"id\":\"x\",\"type\":\"message-start\",\"delta\":{}}\n\n",
        )],
    );
    assert!(out.last().unwrap().contains("stream_truncated"), "{out:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(32), ..ProptestConfig::default() })]
    #[test]
    fn any_chunking_translates_the_same(cuts in proptest::collection::vec(0usize..10_000, 0..100)) {
        for path in FIXTURES {
            check(path, &cuts);
        }
    }
}
