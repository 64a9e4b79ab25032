//! Running a dialect behind the full stack, and what a client of the standard stream sees.
#![allow(dead_code)]

use super::script::{Step, frames};
use http::Request;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::dialect::Dialect;
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::usage::UsageLastChunkLayer;

/// ErrorEvent → UsageLastChunk → SseReframe(dialect) over the scripted SSE upstream.
pub fn run_stack<D: Dialect + Clone + Send + Sync>(dialect: D, steps: Vec<Step>) -> Vec<String> {
    run_stack_as("text/event-stream", dialect, steps).1
}

/// The same over an upstream answering `content_type`; returns the client's content type too.
pub fn run_stack_as<D: Dialect + Clone + Send + Sync>(
    content_type: &'static str,
    dialect: D,
    steps: Vec<Step>,
) -> (String, Vec<String>) {
    let service = ServiceBuilder::new()
        .layer(ErrorEventLayer::new())
        .layer(UsageLastChunkLayer::new())
        .layer(SseReframeLayer::new().dialect(dialect))
        .service(super::script::upstream(content_type, steps));
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async move {
            let response = service.oneshot(Request::new(())).await.unwrap();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            (content_type, frames(response.into_body()).await)
        })
}

/// The JSON chunks of a standard stream (without `[DONE]`).
pub fn chat_chunks(out: &[String]) -> Vec<Value> {
    out.iter()
        .filter(|f| *f != "data: [DONE]\n\n")
        .filter_map(|f| f.strip_prefix("data: ")) // comments pass through; they are not chunks
        .map(|data| serde_json::from_str(data.trim_end()).unwrap())
        .collect()
}

/// What a client accumulates: text per field, tool calls (id, name, arguments), the finish
/// reason and the usage.
#[derive(Debug, Default, PartialEq)]
pub struct Seen {
    pub text: BTreeMap<&'static str, String>,
    pub tools: Vec<(String, String, String)>,
    pub finish_reason: String,
    pub usage: Value,
}

/// What a client accumulates from these standard chunks.
pub fn client_view(chunks: &[Value]) -> Seen {
    let mut seen = Seen::default();
    for chunk in chunks {
        let choice = &chunk["choices"][0];
        for field in ["content", "reasoning_content", "refusal"] {
            if let Some(text) = choice["delta"][field].as_str() {
                seen.text.entry(field).or_default().push_str(text);
            }
        }
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            if let Some(id) = call["id"].as_str() {
                assert_eq!(i, seen.tools.len(), "tool call indexes count from 0");
                seen.tools.push((
                    id.into(),
                    call["function"]["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            seen.tools[i]
                .2
                .push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            seen.finish_reason = reason.into();
        }
        if chunk["usage"].is_object() {
            seen.usage = chunk["usage"].clone();
        }
    }
    seen.text.retain(|_, v| !v.is_empty());
    seen
}

/// The standard's shape: role first, one constant id/model/created, finish reason and usage
/// only in the last chunk (with an empty delta), `[DONE]` last.
pub fn assert_standard(path: &str, out: &[String]) -> Vec<Value> {
    assert_eq!(
        out.last().map(String::as_str),
        Some("data: [DONE]\n\n"),
        "{path}: {out:?}"
    );
    let chunks = chat_chunks(out);
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["role"], "assistant",
        "{path}: role first"
    );
    let (last, rest) = chunks.split_last().unwrap();
    assert!(last["choices"][0]["finish_reason"].is_string(), "{path}");
    assert_eq!(last["choices"][0]["delta"], json!({}), "{path}");
    for chunk in rest {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{path}");
        assert!(
            chunk["choices"][0]["finish_reason"].is_null(),
            "{path}: {chunk}"
        );
        // `"usage": null` (OpenAI's own content chunks) is no usage; an object would be.
        assert!(!chunk["usage"].is_object(), "{path}: {chunk}");
        assert_eq!(
            (&chunk["id"], &chunk["model"], &chunk["created"]),
            (&last["id"], &last["model"], &last["created"]),
            "{path}"
        );
    }
    chunks
}

/// The value reads as the canonical type `T` and writes back to exactly itself: the types
/// describe the stream and lose nothing.
pub fn assert_typed<'a, T>(path: &str, value: &'a Value)
where
    T: serde::Deserialize<'a> + serde::Serialize,
{
    let typed = T::deserialize(value).unwrap_or_else(|e| {
        panic!(
            "{path}: {value} does not read as {}: {e}",
            std::any::type_name::<T>()
        )
    });
    assert_eq!(
        &serde_json::to_value(&typed).unwrap(),
        value,
        "{path}: round trip"
    );
}
