//! `UsageLastChunkLayer` (behind the reframer) on every OpenAI-compatible fixture, checking the
//! standard stream's invariants, and on random chunkings.

mod common;

use bytes::Bytes;
use common::script::{Step, data, frames, sse_upstream};
use http::Request;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::usage::UsageLastChunkLayer;

async fn normalize(steps: Vec<Step>) -> Vec<String> {
    let service = ServiceBuilder::new()
        .layer(UsageLastChunkLayer::new())
        .layer(SseReframeLayer::new())
        .service(sse_upstream(steps));
    frames(service.oneshot(Request::new(())).await.unwrap().into_body()).await
}

fn run(steps: Vec<Step>) -> Vec<String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(normalize(steps))
}

/// The JSON chunks of a stream (events that are not `[DONE]`), and whether it ended in `[DONE]`.
fn chunks(raw: &[u8]) -> (Vec<Value>, bool) {
    let events = common::events(vec![Bytes::copy_from_slice(raw)]);
    let done = events.last().is_some_and(|e| e.data == "[DONE]");
    let chunks = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    (chunks, done)
}

/// Everything a client concatenates, per choice and field.
fn text_by_field(chunks: &[Value]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for chunk in chunks {
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let i = choice["index"].as_u64().unwrap_or(0);
            let mut add = |field: &str, value: &Value| {
                if let Some(text) = value.as_str() {
                    out.entry(format!("{i}.{field}"))
                        .or_insert_with(String::new)
                        .push_str(text);
                }
            };
            add("text", &choice["text"]);
            for field in ["content", "refusal", "reasoning_content", "reasoning"] {
                add(field, &choice["delta"][field]);
            }
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let n = call["index"].as_u64().unwrap_or(0);
                add(
                    &format!("tool{n}.arguments"),
                    &call["function"]["arguments"],
                );
                add(&format!("tool{n}.name"), &call["function"]["name"]);
            }
        }
    }
    out
}

fn finish_reasons(chunks: &[Value]) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for chunk in chunks {
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            if let Some(reason) = choice["finish_reason"].as_str() {
                out.insert(choice["index"].as_u64().unwrap_or(0), reason.to_owned());
            }
        }
    }
    out
}

fn last_usage(chunks: &[Value]) -> Option<Value> {
    chunks
        .iter()
        .rev()
        .find_map(|c| {
            Some(&c["usage"])
                .filter(|u| u.is_object())
                .or(Some(&c["x_groq"]["usage"]).filter(|u| u.is_object()))
        })
        .cloned()
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
    "openrouter/reasoning_usage_chunk_with_nonempty_choices.sse",
];

fn check(path: &str, cuts: &[usize]) {
    let raw = common::fixture(path);
    let steps = common::split_at(&raw, cuts)
        .into_iter()
        .map(Step::Data)
        .collect();
    let out = run(steps);
    assert!(out.iter().all(|f| !f.starts_with("ERR")), "{path}: {out:?}");
    let out_raw = out.concat();
    // Fixtures stored without the final blank line (see SOURCES.md) end with it here.
    let mut input = raw.clone();
    if !input.ends_with(b"\n\n") && !input.ends_with(b"\r\n\r\n") {
        input.extend_from_slice(b"\n\n");
    }
    let (before, done_in) = chunks(&input);
    let (after, done_out) = chunks(out_raw.as_bytes());
    assert!(done_in && done_out, "{path}: ends with [DONE]");
    assert_eq!(out.last().unwrap(), "data: [DONE]\n\n", "{path}");

    assert_eq!(
        text_by_field(&after),
        text_by_field(&before),
        "{path}: content in = content out"
    );

    let (last, rest) = after.split_last().unwrap();
    assert_eq!(
        finish_reasons(std::slice::from_ref(last)),
        finish_reasons(&before),
        "{path}: every finish reason, in the last chunk"
    );
    assert!(
        finish_reasons(rest).is_empty(),
        "{path}: no finish reason before the last chunk"
    );
    for choice in last["choices"].as_array().unwrap() {
        let delta = choice
            .get("delta")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        assert_eq!(
            delta,
            serde_json::json!({}),
            "{path}: the last chunk's deltas are empty"
        );
    }

    assert_eq!(
        last.get("usage").cloned(),
        last_usage(&before),
        "{path}: the upstream's final usage, exactly"
    );
    assert!(
        rest.iter()
            .all(|c| !c["usage"].is_object() && !c["x_groq"]["usage"].is_object()),
        "{path}: usage only in the last chunk"
    );

    for key in ["id", "model", "created"] {
        let values: std::collections::BTreeSet<String> =
            after.iter().map(|c| c[key].to_string()).collect();
        assert_eq!(values.len(), 1, "{path}: one {key}: {values:?}");
    }
}

#[test]
fn every_openai_compatible_fixture_meets_the_standard() {
    for path in FIXTURES {
        check(path, &[]);
    }
}

#[test]
fn chunks_with_content_and_finish_reason_are_split() {
    // Mistral sends the whole tool call, the finish reason and usage in one chunk.
    let out = run(vec![Step::Data(Bytes::from(common::fixture(
        "mistral/tool_call.sse",
    )))]);
    assert_eq!(out.len(), 4, "{out:?}");
    assert!(out[0].contains("\"role\":\"assistant\""));
    let call: Value = serde_json::from_str(out[1].strip_prefix("data: ").unwrap()).unwrap();
    assert!(call["choices"][0]["delta"]["tool_calls"].is_array());
    assert!(call["choices"][0]["finish_reason"].is_null());
    assert!(call.get("usage").is_none());
    let last: Value = serde_json::from_str(out[2].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(last["usage"]["total_tokens"], 146);
}

#[test]
fn no_usage_reported_means_no_usage_field() {
    let out = run(vec![data(
        "data: {\"id\":\"a\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
         data: {\"id\":\"a\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
         data: [DONE]\n\n",
    )]);
    assert_eq!(out.len(), 3);
    assert!(
        out[0].contains("\"role\":\"assistant\""),
        "the first chunk keeps its role: {}",
        out[0]
    );
    let last: Value = serde_json::from_str(out[1].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(last.get("usage").is_none(), "never fabricated: {last}");
}

#[test]
fn the_final_chunk_repeats_the_first_chunks_fields_as_sent() {
    // A text completion: `"text":""` in the final chunk; a null field is left out; the id's
    // escape is kept as the upstream wrote it.
    let out = run(vec![data(concat!(
        "data: {\"id\":\"cmpl-\\u0031\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\",\"system_fingerprint\":null,",
        "\"choices\":[{\"index\":0,\"text\":\"Hi\",\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\",",
        "\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"length\"}],",
        "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n",
        "data: [DONE]\n\n",
    ))]);
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(
        out[1],
        concat!(
            "data: {\"id\":\"cmpl-\\u0031\",\"object\":\"text_completion\",\"created\":5,\"model\":\"m\",",
            "\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"length\"}],",
            "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n"
        )
    );
    assert_eq!(out[2], "data: [DONE]\n\n");
}

#[test]
fn odd_first_events_do_not_decide_the_stream() {
    // A JSON array first: passed through, the next chunk decides; a first chunk with a
    // duplicate key: read in full, the last value wins (as a JSON map keeps it).
    let chunk = |id: &str, reason: &str| {
        format!(
            "data: {{\"id\":\"{id}\",\"id\":\"{id}2\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"x\"}},\"finish_reason\":{reason}}}]}}\n\n"
        )
    };
    let stream = format!(
        "data: [1,2]\n\n{}{}data: [DONE]\n\n",
        chunk("a", "null"),
        chunk("a", "\"stop\"")
    );
    let out = run(vec![data(stream)]);
    assert_eq!(out[0], "data: [1,2]\n\n");
    let last: Value =
        serde_json::from_str(out[out.len() - 2].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(last["id"], "a2", "{out:?}");
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(out.last().unwrap(), "data: [DONE]\n\n");
}

#[test]
fn error_events_end_the_stream_without_a_final_chunk() {
    let raw = common::fixture("groq/midstream_error_tool_use_failed.sse");
    let out = run(vec![Step::Data(Bytes::from(raw))]);
    let last = out.last().unwrap();
    assert!(last.starts_with("event: error\n"), "{last}");
    assert!(out.iter().all(|f| f != "data: [DONE]\n\n"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(32), ..ProptestConfig::default() })]
    #[test]
    fn any_chunking_gives_identical_output(cuts in proptest::collection::vec(0usize..70_000, 0..100)) {
        for path in FIXTURES {
            let raw = common::fixture(path);
            let whole = run(vec![Step::Data(Bytes::from(raw.clone()))]);
            let chunked = run(common::split_at(&raw, &cuts).into_iter().map(Step::Data).collect());
            prop_assert_eq!(whole, chunked, "{}", path);
        }
    }
}
