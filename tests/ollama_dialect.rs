//! Ollama's native NDJSON streams through the reframer (NDJSON mode) and the Ollama dialect.

mod common;

use bytes::Bytes;
use common::dialects::{assert_standard, chat_chunks, client_view, run_stack_as};
use common::script::{Step, data};
use proptest::prelude::*;
use tower_llm_stream::ndjson::NdjsonDecoder;
use tower_llm_stream::provider::ollama::Ollama;

fn run(raw: &[u8], cuts: &[usize]) -> Vec<String> {
    let steps = common::split_at(raw, cuts)
        .into_iter()
        .map(Step::Data)
        .collect();
    let (content_type, out) = run_stack_as("application/x-ndjson", Ollama::new(), steps);
    assert_eq!(content_type, "text/event-stream");
    out
}

#[test]
fn generate_stream_translates() {
    let raw = common::fixture("ollama/generate_stream.ndjson");
    let out = run(&raw, &[]);
    let chunks = assert_standard("ollama/generate_stream.ndjson", &out);
    let seen = client_view(&chunks);
    assert_eq!(seen.text["content"], "That's a fantastic question!");
    assert_eq!(seen.finish_reason, "stop");
    assert_eq!(chunks[0]["model"], "gemma4");
    assert!(
        seen.usage.is_null(),
        "no counts in the stream, none invented"
    );
}

#[test]
fn midstream_error_line_becomes_an_error_event() {
    let raw = common::fixture("ollama/generate_stream_midstream_error.ndjson");
    let out = run(&raw, &[]);
    assert_eq!(
        out.last().unwrap(),
        "data: {\"error\":{\"type\":\"upstream_error\",\"code\":\"ollama_error\",\"message\":\"an error was encountered while running the model\"}}\n\n"
    );
    assert!(out.iter().all(|f| f != "data: [DONE]\n\n"));
    let text: String = chat_chunks(&out[..out.len() - 1])
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, " Yes.Ican");
}

#[test]
fn chat_api_with_thinking_tool_calls_and_usage() {
    let lines = concat!(
        "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"Need weather.\"},\"done\":false}\n",
        "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]},\"done\":false}\n",
        "{\"model\":\"qwen3\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":26,\"eval_count\":12}\n",
    );
    let out = run(lines.as_bytes(), &[]);
    let chunks = assert_standard("chat", &out);
    let seen = client_view(&chunks);
    assert_eq!(seen.text["reasoning_content"], "Need weather.");
    assert_eq!(
        seen.tools,
        [(
            "call_0".to_owned(),
            "get_weather".to_owned(),
            "{\"city\":\"Paris\"}".to_owned()
        )]
    );
    assert_eq!(seen.finish_reason, "tool_calls");
    assert_eq!(
        seen.usage,
        serde_json::json!({"prompt_tokens": 26, "completion_tokens": 12, "total_tokens": 38})
    );
}

#[test]
fn no_done_is_truncation_and_sse_passes_by() {
    let (_, out) = run_stack_as(
        "application/x-ndjson",
        Ollama::new(),
        vec![data(
            "{\"model\":\"m\",\"response\":\"a\",\"done\":false}\n",
        )],
    );
    assert!(out.last().unwrap().contains("stream_truncated"), "{out:?}");
    // JSON that is not NDJSON-typed passes untouched.
    let (content_type, out) =
        run_stack_as("application/json", Ollama::new(), vec![data("{\"a\":1}")]);
    assert_eq!(
        (content_type.as_str(), out.as_slice()),
        ("application/json", &["{\"a\":1}".to_owned()][..])
    );
}

/// The frames with the fields taken from the clock (`id`, `created`) removed: two runs may
/// straddle a second.
fn without_clock(frames: Vec<String>) -> Vec<serde_json::Value> {
    frames
        .iter()
        .map(|f| {
            let data = f.strip_prefix("data: ").unwrap_or(f).trim_end();
            let mut value: serde_json::Value =
                serde_json::from_str(data).unwrap_or_else(|_| data.into());
            if let Some(obj) = value.as_object_mut() {
                obj.remove("id");
                obj.remove("created");
            }
            value
        })
        .collect()
}

fn lines(max: usize, chunks: Vec<Bytes>) -> Vec<Result<String, String>> {
    let mut decoder = NdjsonDecoder::new(max);
    let mut out = Vec::new();
    let mut drain = |d: &mut NdjsonDecoder| {
        while let Some(b) = d.next_block() {
            out.push(
                b.map(|b| {
                    format!(
                        "{}{}",
                        b.event().unwrap().data(),
                        if b.is_terminated() { "" } else { "<eof>" }
                    )
                })
                .map_err(|e| e.to_string()),
            );
        }
    };
    for chunk in chunks {
        decoder.push(chunk);
        drain(&mut decoder);
    }
    decoder.finish();
    drain(&mut decoder);
    out
}

#[test]
fn ndjson_lines_limits_and_eof() {
    let input = b"{\"a\":1}\r\n\n  \n{\"bbbbbbbbbbbbbbbbbbbb\":2}\n{\"c\":3}";
    let expected: Vec<Result<String, String>> = vec![
        Ok("{\"a\":1}".into()),
        Err("server-sent event larger than the 12-byte limit".into()),
        Ok("{\"c\":3}<eof>".into()),
    ];
    for size in [0, 1, 3, 5] {
        assert_eq!(
            lines(12, common::chunks_of(input, size)),
            expected,
            "chunk size {size}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: common::cases(256), ..ProptestConfig::default() })]
    #[test]
    fn ndjson_any_chunking_same_lines(input in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'{'), Just(b'a'), Just(b' '), any::<u8>()], 0..200), cuts in proptest::collection::vec(0usize..200, 0..20), max in 1usize..40) {
        let whole = lines(max, vec![Bytes::from(input.clone())]);
        prop_assert_eq!(lines(max, common::split_at(&input, &cuts)), whole);
    }

    #[test]
    fn ollama_any_chunking_translates_the_same(cuts in proptest::collection::vec(0usize..1300, 0..50)) {
        for path in ["ollama/generate_stream.ndjson", "ollama/generate_stream_midstream_error.ndjson"] {
            let raw = common::fixture(path);
            prop_assert_eq!(without_clock(run(&raw, &cuts)), without_clock(run(&raw, &[])));
        }
    }
}
