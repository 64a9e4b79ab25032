//! The Responses API normalizer: OpenAI's own streams unchanged, llama.cpp's made whole.

mod common;

use bytes::Bytes;
use common::dialects::run_stack;
use common::script::{Step, data};
use proptest::prelude::*;
use serde_json::Value;
use tower_llm_stream::provider::openai::OpenAiResponses;

/// (event type line, JSON data) of each event.
fn events(raw: &[u8]) -> Vec<(Option<String>, Value)> {
    common::events(vec![Bytes::copy_from_slice(raw)])
        .into_iter()
        .map(|e| (e.event, serde_json::from_str(&e.data).unwrap()))
        .collect()
}

fn run(raw: &[u8], cuts: &[usize]) -> Vec<String> {
    run_stack(
        OpenAiResponses::new(),
        common::split_at(raw, cuts)
            .into_iter()
            .map(Step::Data)
            .collect(),
    )
}

/// The standard's rules for a Responses stream.
fn assert_standard(path: &str, out: &[String]) -> Vec<(Option<String>, Value)> {
    let evs = events(out.concat().as_bytes());
    assert_eq!(
        evs[0].1["type"], "response.created",
        "{path}: created first"
    );
    let mut items = std::collections::HashSet::new();
    let mut parts = std::collections::HashSet::new();
    for (n, (event, data)) in evs.iter().enumerate() {
        common::dialects::assert_typed::<tower_llm_stream::standard::events::ResponsesEvent>(
            path, data,
        );
        let kind = data["type"].as_str().unwrap();
        assert_eq!(event.as_deref(), Some(kind), "{path}: event line = type");
        assert_eq!(data["sequence_number"], n as u64, "{path}: gapless from 0");
        if kind == "response.output_item.added" {
            items.insert(data["item"]["id"].as_str().unwrap().to_owned());
        }
        if kind == "response.content_part.added" {
            parts.insert((
                data["item_id"].as_str().unwrap().to_owned(),
                data["content_index"].as_u64().unwrap(),
            ));
        }
        if kind.starts_with("response.output_item.") {
            assert!(
                data["output_index"].is_u64(),
                "{path}: output_index on {kind}"
            );
        }
        if let Some(response) = data.get("response") {
            assert!(
                response["output"].is_array(),
                "{path}: {kind} has an output list"
            );
        }
        if let Some(item) = data["item_id"].as_str() {
            assert!(
                data["output_index"].is_u64(),
                "{path}: output_index on {kind}"
            );
            assert!(
                items.contains(item),
                "{path}: {kind} before its item was added"
            );
            if kind.starts_with("response.output_text.") {
                let part = (
                    item.to_owned(),
                    data["content_index"].as_u64().expect("content_index"),
                );
                assert!(
                    parts.contains(&part),
                    "{path}: {kind} before its part was added"
                );
            }
        }
        let terminal = [
            "response.completed",
            "response.incomplete",
            "response.failed",
        ]
        .contains(&kind);
        if !terminal {
            assert!(
                !data["response"]["usage"].is_object(),
                "{path}: usage only in the terminal event"
            );
        }
    }
    assert!(
        out.iter().all(|f| f != "data: [DONE]\n\n"),
        "{path}: no [DONE]"
    );
    evs
}

const OPENAI: &[&str] = &[
    "openai/responses_text.sse",
    "openai/responses_function_call.sse",
    "openai/responses_reasoning_summary_then_function_call.sse",
];

#[test]
fn openai_streams_pass_unchanged() {
    for path in OPENAI {
        let raw = common::fixture(path);
        let out = run(&raw, &[]);
        let evs = assert_standard(path, &out);
        assert_eq!(evs, events(&raw), "{path}");
        assert!(evs.last().unwrap().1["response"]["usage"].is_object());
    }
}

#[test]
fn openai_error_then_failed() {
    let raw = common::fixture("openai/responses_error_failed.sse");
    let out = run(&raw, &[]);
    let evs = events(out.concat().as_bytes());
    let kinds: Vec<&str> = evs
        .iter()
        .map(|(_, d)| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "error",
            "response.failed"
        ]
    );
    assert_eq!(evs[2].1["error"]["code"], "insufficient_quota");
}

/// Blocks that are not events (a comment, a field no spec knows) pass through while the stream
/// runs, but not after `error` (only its `response.failed` may follow) nor after the terminal
/// event: found by the `dialects` fuzz target.
#[test]
fn nothing_but_response_failed_follows_an_error() {
    let raw = String::from_utf8(common::fixture("openai/responses_error_failed.sse")).unwrap();
    let failed = raw.find("event: response.failed").unwrap();
    let raw = format!(
        ": before\n\n{}: after the error\n\nunknown-field\n\n{}: after the end\n\nstray\n\n",
        &raw[..failed],
        &raw[failed..]
    );
    let out = run(raw.as_bytes(), &[]);
    assert_eq!(out[0], ": before\n\n", "{out:?}");
    let error = out
        .iter()
        .position(|f| f.starts_with("event: error\n"))
        .unwrap();
    assert!(
        out[error + 1].starts_with("event: response.failed\n"),
        "{out:?}"
    );
    assert_eq!(
        out.len(),
        error + 2,
        "nothing after response.failed: {out:?}"
    );
}

#[test]
fn llama_cpp_stream_is_numbered_and_indexed() {
    let path = "llamacpp/responses_no_sequence_numbers.sse";
    let raw = common::fixture(path);
    let out = run(&raw, &[]);
    let evs = assert_standard(path, &out);
    assert_eq!(
        evs.len(),
        events(&raw).len(),
        "nothing added or lost: its *.added events were there"
    );
    let text: String = evs
        .iter()
        .filter(|(_, d)| d["type"] == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Welcome to my humble abode of wisdom and");
    assert_eq!(
        evs.last().unwrap().1["response"]["usage"]["total_tokens"],
        41
    );
}

#[test]
fn missing_created_and_added_events_are_synthesized() {
    let out = run_stack(
        OpenAiResponses::new(),
        vec![data(concat!(
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"delta\":\"Hi\"}\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1,\"total_tokens\":2}}}\n\n",
        ))],
    );
    let evs = assert_standard("synthetic", &out);
    let kinds: Vec<&str> = evs
        .iter()
        .map(|(_, d)| d["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.completed"
        ]
    );
}

#[test]
fn truncated_and_malformed() {
    let out = run_stack(
        OpenAiResponses::new(),
        vec![data(
            "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n",
        )],
    );
    let last = out.last().unwrap();
    assert!(
        last.starts_with("event: error\n") && last.contains("stream_truncated"),
        "{last}"
    );
    assert!(
        last.contains("\"sequence_number\":1"),
        "the error continues the numbering: {last}"
    );
    let out = run_stack(
        OpenAiResponses::new(),
        vec![data("event: response.created\ndata: [oops\n\n")],
    );
    assert!(out.last().unwrap().contains("malformed_event"), "{out:?}");
}

#[test]
fn a_type_with_a_line_break_cannot_forge_frames() {
    let out = run_stack(
        OpenAiResponses::new(),
        vec![data(
            "data: {\"type\":\"response.created\\n\\ndata: [DONE]\",\"response\":{}}\n\n",
        )],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].contains("malformed_event"), "{out:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(24), ..ProptestConfig::default() })]
    #[test]
    fn any_chunking_normalizes_the_same(cuts in proptest::collection::vec(0usize..30_000, 0..100)) {
        for path in OPENAI.iter().chain(&["llamacpp/responses_no_sequence_numbers.sse"]) {
            let raw = common::fixture(path);
            prop_assert_eq!(run(&raw, &cuts), run(&raw, &[]), "{}", path);
        }
    }
}

/// An upstream `error` event, whichever shape it came in, leaves in the documented one:
/// top-level `code`, `message`, `param`, `sequence_number` (async-openai requires them).
#[test]
fn upstream_error_events_are_normalized_to_the_documented_shape() {
    use tower_llm_stream::provider::openai::OpenAiResponses;
    for error in [
        r#"{"type":"error","code":"server_error","message":"boom","param":null,"sequence_number":3}"#,
        r#"{"type":"error","error":{"type":"server_error","code":"server_error","message":"boom","param":null},"sequence_number":3}"#,
    ] {
        let stream = format!(
            "event: response.created\ndata: {{\"type\":\"response.created\",\"sequence_number\":0,\"response\":{{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[]}}}}\n\nevent: error\ndata: {error}\n\n"
        );
        let out =
            common::dialects::run_stack(OpenAiResponses::new(), vec![common::script::data(stream)]);
        let last = out.last().unwrap();
        let data: serde_json::Value =
            serde_json::from_str(last.split_once("data: ").unwrap().1.trim_end()).unwrap();
        assert_eq!(data["type"], "error", "{last}");
        assert_eq!(data["code"], "server_error", "{last}");
        assert_eq!(data["message"], "boom", "{last}");
        assert!(data.get("param").is_some(), "{last}");
        assert_eq!(data["sequence_number"], 1, "{last}");
    }
}

/// A Responses stream cut off by the upstream ends as OpenAI ends a failed stream: the
/// `error` event, then `response.failed` with the stream's response id, numbers gapless.
#[test]
fn a_cut_responses_stream_ends_with_error_then_response_failed() {
    use tower_llm_stream::provider::openai::OpenAiResponses;
    let raw = common::fixture("openai/responses_text.sse");
    let out = common::dialects::run_stack(
        OpenAiResponses::new(),
        vec![common::script::data(raw[..raw.len() / 2].to_vec())],
    );
    let body = out.concat();
    let events: Vec<serde_json::Value> = body
        .split_terminator("\n\n")
        .map(|block| serde_json::from_str(block.split_once("data: ").unwrap().1).unwrap())
        .collect();
    let n = events.len();
    assert_eq!(events[n - 2]["type"], "error");
    assert_eq!(events[n - 2]["code"], "stream_truncated");
    assert_eq!(events[n - 1]["type"], "response.failed");
    assert_eq!(events[n - 1]["response"]["status"], "failed");
    assert_eq!(events[n - 1]["response"]["id"], events[0]["response"]["id"]);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], i, "{event}");
    }
}
