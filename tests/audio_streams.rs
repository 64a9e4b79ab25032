//! Speech (`stream_format: "sse"`) and transcription (`stream=true`) streams through the full
//! stack with the OpenAI-compatible dialect: CRLF framing normalized, transcription deltas
//! with `text`, usage left in the `*.done` event, `[DONE]` last.

mod common;

use bytes::Bytes;
use common::dialects::run_stack;
use common::script::Step;
use serde_json::Value;
use tower_llm_stream::provider::openai::OpenAiCompatible;

fn run(path: &str) -> (Vec<Value>, Vec<Value>, Vec<String>) {
    let raw = common::fixture(path);
    let out = run_stack(
        OpenAiCompatible::new(),
        vec![Step::Data(Bytes::from(raw.clone()))],
    );
    let parse = |events: Vec<common::Seen>| -> Vec<Value> {
        events
            .into_iter()
            .filter(|e| e.data != "[DONE]")
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    };
    let upstream = parse(common::events(vec![Bytes::from(raw)]));
    let client = parse(common::events(vec![Bytes::from(out.concat())]));
    (upstream, client, out)
}

#[test]
fn speech_stream_passes_with_usage_in_its_done_event() {
    let (upstream, client, out) = run("openai/audio_speech_sse.sse");
    assert_eq!(client, upstream, "every event unchanged");
    assert_eq!(out.last().unwrap(), "data: [DONE]\n\n");
    assert!(out.iter().all(|f| !f.contains('\r')));
    for event in &client {
        common::dialects::assert_typed::<tower_llm_stream::standard::events::SpeechEvent>(
            "speech", event,
        );
    }
    let done = &client[client.len() - 1];
    assert_eq!(done["type"], "speech.audio.done");
    assert!(done["usage"]["total_tokens"].is_u64());
}

#[test]
fn transcription_deltas_carry_delta_and_text() {
    for path in [
        "openai/audio_transcription_stream.sse",
        "openai/audio_transcription_stream_logprobs.sse",
        "openai/audio_transcription_diarized_stream.sse",
    ] {
        let (upstream, client, out) = run(path);
        assert_eq!(client.len(), upstream.len(), "{path}");
        assert_eq!(out.last().unwrap(), "data: [DONE]\n\n", "{path}");
        let mut from_deltas = String::new();
        for (up, ev) in upstream.iter().zip(&client) {
            if up["type"] == "transcript.text.delta" {
                assert_eq!(ev["delta"], up["delta"], "{path}");
                assert_eq!(ev["text"], up["delta"], "{path}");
                from_deltas.push_str(ev["delta"].as_str().unwrap());
                let mut without_text = ev.clone();
                without_text.as_object_mut().unwrap().remove("text");
                assert_eq!(&without_text, up, "{path}: nothing else changed");
            } else {
                assert_eq!(ev, up, "{path}: segments and done pass through");
            }
        }
        for event in &client {
            common::dialects::assert_typed::<tower_llm_stream::standard::events::TranscriptionEvent>(
                path, event,
            );
        }
        let done = client.last().unwrap();
        assert_eq!(done["type"], "transcript.text.done", "{path}");
        assert!(done["usage"].is_object(), "{path}");
        if !from_deltas.is_empty() {
            assert_eq!(done["text"].as_str().unwrap(), from_deltas, "{path}");
        }
    }
}

/// The capture without its `[DONE]` (some servers end at the `.done` event), or cut before.
fn without_done(path: &str, cut_before_done: bool) -> Vec<String> {
    let text = String::from_utf8(common::fixture(path)).unwrap();
    let at = if cut_before_done {
        text.find("data: {\"type\":\"speech.audio.done\"")
            .or_else(|| text.find("data: {\"type\":\"transcript.text.done\""))
            .unwrap()
    } else {
        text.rfind("data: [DONE]").unwrap()
    };
    run_stack(
        OpenAiCompatible::new(),
        vec![Step::Data(Bytes::from(text[..at].to_owned()))],
    )
}

#[test]
fn an_audio_stream_that_ends_at_its_done_event_is_complete() {
    for path in [
        "openai/audio_speech_sse.sse",
        "openai/audio_transcription_stream.sse",
    ] {
        let out = without_done(path, false);
        assert_eq!(out.last().unwrap(), "data: [DONE]\n\n", "{path}");
        assert!(out.iter().all(|f| !f.contains("\"error\"")), "{path}");
        let cut = without_done(path, true);
        assert!(
            cut.last()
                .unwrap()
                .contains("\"code\":\"stream_truncated\""),
            "{path}: {:?}",
            cut.last()
        );
    }
}
