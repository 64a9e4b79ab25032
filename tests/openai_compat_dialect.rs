//! The OpenAI-compatible dialect (with the usage layer) on every OpenAI-compatible fixture:
//! OpenAI, vLLM, DeepSeek, Groq, Mistral, OpenRouter.

mod common;

use bytes::Bytes;
use common::dialects::{assert_standard, chat_chunks, run_stack};
use common::script::Step;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use tower_llm_stream::provider::openai::OpenAiCompatible;

/// Text per (choice, field) as a client accumulates it. With `upstream`, the quirks are read
/// the way the dialect documents them: `reasoning` and Mistral's thinking parts are
/// reasoning, Mistral's text parts are content, calls without index count up.
fn texts(chunks: &[Value], upstream: bool) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut calls: BTreeMap<u64, u64> = BTreeMap::new();
    for chunk in chunks {
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let i = choice["index"].as_u64().unwrap_or(0);
            let d = &choice["delta"];
            let mut add = |field: &str, text: &str| {
                out.entry(format!("{i}.{field}"))
                    .or_default()
                    .push_str(text)
            };
            add("text", choice["text"].as_str().unwrap_or(""));
            add("refusal", d["refusal"].as_str().unwrap_or(""));
            add(
                "reasoning_content",
                d["reasoning_content"].as_str().unwrap_or(""),
            );
            if upstream {
                add("reasoning_content", d["reasoning"].as_str().unwrap_or(""));
            }
            match &d["content"] {
                Value::String(s) => add("content", s),
                Value::Array(parts) if upstream => {
                    for p in parts {
                        if p["type"] == "thinking" {
                            for t in p["thinking"].as_array().into_iter().flatten() {
                                add("reasoning_content", t["text"].as_str().unwrap());
                            }
                        } else {
                            add("content", p["text"].as_str().unwrap_or(""));
                        }
                    }
                }
                _ => {}
            }
            for call in d["tool_calls"].as_array().into_iter().flatten() {
                let opened = calls.entry(i).or_insert(0);
                let n = match call["index"].as_u64() {
                    Some(n) => n,
                    None => {
                        if call.get("id").is_some() {
                            *opened += 1;
                        }
                        *opened - 1
                    }
                };
                add(
                    &format!("tool{n}.name"),
                    call["function"]["name"].as_str().unwrap_or(""),
                );
                add(
                    &format!("tool{n}.arguments"),
                    call["function"]["arguments"].as_str().unwrap_or(""),
                );
                add(&format!("tool{n}.id"), call["id"].as_str().unwrap_or(""));
            }
        }
    }
    out.retain(|_, v| !v.is_empty());
    out
}

fn upstream_chunks(raw: &[u8]) -> Vec<Value> {
    let mut raw = raw.to_vec();
    raw.extend_from_slice(b"\n\n");
    common::events(vec![Bytes::from(raw)])
        .into_iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

const FIXTURES: &[&str] = &[
    "openai/chat_text_include_usage.sse",
    "openai/chat_tool_call_include_usage.sse",
    "openai/chat_parallel_tool_calls.sse",
    "openai/chat_refusal.sse",
    "openai/chat_finish_length.sse",
    "openai/chat_n3_multiple_choices.sse",
    "openai/chat_extra_moderation_chunk.sse",
    "openai/completions_legacy_text.sse",
    "vllm/continuous_usage_stats.sse",
    "deepseek/reasoning_content.sse",
    "groq/tool_call_x_groq_usage.sse",
    "mistral/tool_call.sse",
    "mistral/thinking_magistral.sse",
    "openrouter/reasoning_usage_chunk_with_nonempty_choices.sse",
];

fn check(path: &str, cuts: &[usize]) {
    let raw = common::fixture(path);
    let out = run_stack(
        OpenAiCompatible::new(),
        common::split_at(&raw, cuts)
            .into_iter()
            .map(Step::Data)
            .collect(),
    );
    if path.contains("completions_legacy") {
        assert_eq!(out.last().unwrap(), "data: [DONE]\n\n");
    } else {
        assert_standard(path, &out);
    }
    let chunks = chat_chunks(&out);
    assert_eq!(
        texts(&chunks, false),
        texts(&upstream_chunks(&raw), true),
        "{path}"
    );
    for chunk in &chunks {
        for choice in chunk["choices"].as_array().unwrap() {
            assert!(
                choice["delta"].get("reasoning").is_none(),
                "{path}: reasoning renamed"
            );
            assert!(
                !choice["delta"]["content"].is_array(),
                "{path}: content is a string"
            );
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                assert!(
                    call["index"].is_u64(),
                    "{path}: every tool call has an index"
                );
            }
        }
    }
}

#[test]
fn every_openai_compatible_fixture_meets_the_standard() {
    for path in FIXTURES {
        check(path, &[]);
    }
}

#[test]
fn groq_error_event_becomes_canonical() {
    let raw = common::fixture("groq/midstream_error_tool_use_failed.sse");
    let out = run_stack(OpenAiCompatible::new(), vec![Step::Data(Bytes::from(raw))]);
    let last: Value = serde_json::from_str(
        out.last()
            .unwrap()
            .strip_prefix("data: ")
            .unwrap()
            .trim_end(),
    )
    .unwrap();
    assert_eq!(last["error"]["code"], "tool_use_failed");
    assert_eq!(last["error"]["type"], "invalid_request_error");
    assert!(last["error"]["message"].as_str().unwrap().len() > 10);
    assert!(out.iter().all(|f| f != "data: [DONE]\n\n"));
    // The reasoning before the error went through, renamed.
    assert!(out.iter().any(|f| f.contains("\"reasoning_content\":")));
}

#[test]
fn openrouter_error_chunk_becomes_canonical() {
    let raw = common::fixture("openrouter/midstream_error_with_comments.sse");
    let out = run_stack(OpenAiCompatible::new(), vec![Step::Data(Bytes::from(raw))]);
    assert_eq!(
        out.last().unwrap(),
        "data: {\"error\":{\"type\":\"upstream_error\",\"code\":\"400\",\"message\":\"Token limit reached\"}}\n\n"
    );
    assert!(
        out.iter().any(|f| f.starts_with(": OPENROUTER PROCESSING")),
        "comments pass through"
    );
    assert!(out.iter().all(|f| f != "data: [DONE]\n\n"));
}

#[test]
fn a_non_json_chunk_is_malformed() {
    let out = run_stack(
        OpenAiCompatible::new(),
        vec![common::script::data("data: {\"tool_calls\": oops\n\n")],
    );
    assert!(out.last().unwrap().contains("malformed_event"), "{out:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(24), ..ProptestConfig::default() })]
    #[test]
    fn any_chunking_translates_the_same(cuts in proptest::collection::vec(0usize..70_000, 0..100)) {
        for path in FIXTURES {
            check(path, &cuts);
        }
    }
}
