//! The render layer over every captured provider stream: each client API's view (what its
//! SDK accumulates) must equal the standard chat stream's view of the same capture: text,
//! reasoning, tool calls, finish reason, usage. Plus each API's event grammar, errors in each
//! API's shape, and chunk-boundary invariance.

mod common;

use bytes::Bytes;
use common::dialects::{Seen, chat_chunks, client_view};
use common::script::{Step, data, frames};
use http::Request;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::provider::{AnyDialect, ClientApi, Endpoint};
use tower_llm_stream::render::RenderLayer;

/// Every chat capture, with the provider whose dialect reads it.
const FIXTURES: &[(&str, &str)] = &[
    ("openai", "openai/chat_text_include_usage.sse"),
    ("openai", "openai/chat_tool_call_include_usage.sse"),
    ("openai", "openai/chat_parallel_tool_calls.sse"),
    ("openai", "openai/chat_refusal.sse"),
    ("openai", "openai/chat_finish_length.sse"),
    ("anthropic", "anthropic/text_minimal.sse"),
    ("anthropic", "anthropic/thinking_then_text.sse"),
    ("anthropic", "anthropic/tool_use.sse"),
    ("anthropic", "anthropic/refusal_sdk_fixture.sse"),
    ("gemini", "gemini/text.sse"),
    ("gemini", "gemini/thinking.sse"),
    ("gemini", "gemini/function_call.sse"),
    ("gemini", "gemini/usage_every_chunk_thoughts.sse"),
    ("cohere", "cohere/text.sse"),
    ("cohere", "cohere/tool_call.sse"),
    ("cohere", "cohere/reasoning.sse"),
    ("ollama", "ollama/generate_stream.ndjson"),
    ("bedrock", "bedrock/converse_stream_text.bin"),
    ("bedrock", "bedrock/converse_stream_tool_use.bin"),
    ("bedrock", "bedrock/converse_stream_reasoning.bin"),
    ("deepseek", "deepseek/reasoning_content.sse"),
    ("mistral", "mistral/tool_call.sse"),
    ("groq", "groq/tool_call_x_groq_usage.sse"),
    (
        "openrouter",
        "openrouter/reasoning_usage_chunk_with_nonempty_choices.sse",
    ),
    ("vllm", "vllm/continuous_usage_stats.sse"),
    ("llamacpp", "llamacpp/chat.sse"),
];

fn dialect(provider: &str) -> AnyDialect {
    match provider {
        "bedrock" => {
            AnyDialect::Bedrock(tower_llm_stream::provider::bedrock::Bedrock::for_model("m"))
        }
        p => AnyDialect::for_provider(p, Endpoint::ChatCompletions),
    }
}

/// The whole stack with the render layer set to `api`, over `steps`.
fn run(
    api: ClientApi,
    provider: &str,
    content_type: &'static str,
    steps: Vec<Step>,
) -> Vec<String> {
    let stack = LlmStreamLayer::new()
        .dialect(dialect(provider))
        .render_layer(RenderLayer::new().default_api(api));
    let service = stack.layer(common::script::upstream(content_type, steps));
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async move {
            let response = service.oneshot(Request::new(())).await.unwrap();
            frames(response.into_body()).await
        })
}

fn uneven(raw: &[u8], seed: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    let (mut at, mut size) = (0, 1 + seed % 13);
    while at < raw.len() {
        let end = (at + size).min(raw.len());
        steps.push(data(raw[at..end].to_vec()));
        at = end;
        size = size % 97 + 5;
    }
    steps
}

/// `event: X\ndata: JSON\n\n` frames as (event, data).
fn typed(frames: &[String]) -> Vec<(Option<String>, Value)> {
    let body = frames.concat();
    body.split_terminator("\n\n")
        .filter(|block| !block.starts_with(':'))
        .map(|block| {
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")));
                }
            }
            (event, data.expect("every block has data"))
        })
        .collect()
}

/// What the Responses SDK accumulates, checking the grammar on the way.
fn responses_view(frames: &[String]) -> Seen {
    let events = typed(frames);
    let mut seen = Seen::default();
    assert_eq!(events[0].0.as_deref(), Some("response.created"));
    assert_eq!(events[1].0.as_deref(), Some("response.in_progress"));
    let id = events[0].1["response"]["id"].as_str().unwrap().to_owned();
    for (i, (event, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i, "gapless sequence numbers");
        assert_eq!(event.as_deref(), data["type"].as_str(), "event name = type");
    }
    let (last_event, last) = events.last().unwrap();
    let response = &last["response"];
    assert_eq!(response["id"], id.as_str());
    seen.finish_reason = match (
        last_event.as_deref().unwrap(),
        response["incomplete_details"]["reason"].as_str(),
    ) {
        ("response.completed", _) => "stop".into(),
        ("response.incomplete", Some("max_output_tokens")) => "length".into(),
        ("response.incomplete", Some("content_filter")) => "content_filter".into(),
        other => panic!("terminal {other:?}"),
    };
    let mut deltas = String::new();
    for item in response["output"].as_array().unwrap() {
        match item["type"].as_str().unwrap() {
            "message" => {
                for part in item["content"].as_array().unwrap() {
                    let (field, text) = match part["type"].as_str().unwrap() {
                        "output_text" => ("content", part["text"].as_str().unwrap()),
                        _ => ("refusal", part["refusal"].as_str().unwrap()),
                    };
                    seen.text.entry(field).or_default().push_str(text);
                }
            }
            "reasoning" => {
                for s in item["summary"].as_array().unwrap() {
                    seen.text
                        .entry("reasoning_content")
                        .or_default()
                        .push_str(s["text"].as_str().unwrap());
                }
            }
            "function_call" => {
                seen.tools.push((
                    item["call_id"].as_str().unwrap().into(),
                    item["name"].as_str().unwrap().into(),
                    item["arguments"].as_str().unwrap().into(),
                ));
                seen.finish_reason = "tool_calls".into();
            }
            other => panic!("item {other}"),
        }
    }
    // The deltas add up to the final text.
    for (event, data) in &events {
        if event.as_deref() == Some("response.output_text.delta") {
            deltas.push_str(data["delta"].as_str().unwrap());
        }
    }
    assert_eq!(
        deltas,
        seen.text.get("content").cloned().unwrap_or_default()
    );
    if let Some(usage) = response["usage"].as_object() {
        seen.usage = json!({"prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"], "total_tokens": usage["total_tokens"]});
    }
    seen.text.retain(|_, v| !v.is_empty());
    seen
}

/// What the Anthropic SDK accumulates, checking the grammar on the way.
fn anthropic_view(frames: &[String]) -> Seen {
    let events = typed(frames);
    let mut seen = Seen::default();
    assert_eq!(events[0].0.as_deref(), Some("message_start"));
    assert_eq!(events.last().unwrap().0.as_deref(), Some("message_stop"));
    let mut open: Option<(u64, String)> = None;
    let mut next = 0;
    for (event, data) in &events {
        assert_eq!(event.as_deref(), data["type"].as_str());
        match event.as_deref().unwrap() {
            "content_block_start" => {
                assert!(open.is_none(), "one block at a time");
                assert_eq!(data["index"], next);
                next += 1;
                let block = &data["content_block"];
                let kind = block["type"].as_str().unwrap().to_owned();
                if kind == "tool_use" {
                    seen.tools.push((
                        block["id"].as_str().unwrap().into(),
                        block["name"].as_str().unwrap().into(),
                        String::new(),
                    ));
                }
                open = Some((data["index"].as_u64().unwrap(), kind));
            }
            "content_block_delta" => {
                let (index, kind) = open.as_ref().expect("a delta inside a block");
                assert_eq!(data["index"], *index);
                let delta = &data["delta"];
                match (kind.as_str(), delta["type"].as_str().unwrap()) {
                    ("text", "text_delta") => seen
                        .text
                        .entry("content")
                        .or_default()
                        .push_str(delta["text"].as_str().unwrap()),
                    ("thinking", "thinking_delta") => seen
                        .text
                        .entry("reasoning_content")
                        .or_default()
                        .push_str(delta["thinking"].as_str().unwrap()),
                    ("thinking", "signature_delta") => {}
                    ("tool_use", "input_json_delta") => seen
                        .tools
                        .last_mut()
                        .unwrap()
                        .2
                        .push_str(delta["partial_json"].as_str().unwrap()),
                    other => panic!("delta {other:?}"),
                }
            }
            "content_block_stop" => {
                assert_eq!(data["index"], open.take().expect("an open block").0);
            }
            "message_delta" => {
                seen.finish_reason = match data["delta"]["stop_reason"].as_str().unwrap() {
                    "end_turn" => "stop",
                    "max_tokens" => "length",
                    "tool_use" => "tool_calls",
                    "refusal" => "content_filter",
                    other => panic!("stop reason {other}"),
                }
                .into();
                let usage = &data["usage"];
                if usage.get("input_tokens").is_some() {
                    let input = [
                        "input_tokens",
                        "cache_read_input_tokens",
                        "cache_creation_input_tokens",
                    ]
                    .iter()
                    .map(|k| usage[k].as_u64().unwrap_or(0))
                    .sum::<u64>();
                    let output = usage["output_tokens"].as_u64().unwrap();
                    seen.usage = json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output});
                }
            }
            "message_start" | "message_stop" => {}
            other => panic!("event {other}"),
        }
    }
    assert!(open.is_none());
    seen.text.retain(|_, v| !v.is_empty());
    seen
}

/// What the Gemini SDK accumulates.
fn gemini_view(frames: &[String]) -> Seen {
    let events = typed(frames);
    let mut seen = Seen::default();
    for (i, (event, chunk)) in events.iter().enumerate() {
        assert!(event.is_none());
        let candidate = &chunk["candidates"][0];
        let last = i + 1 == events.len();
        assert_eq!(
            candidate.get("finishReason").is_some(),
            last,
            "finishReason only in the last chunk"
        );
        assert!(chunk.get("usageMetadata").is_none() || last);
        for part in candidate["content"]["parts"].as_array().unwrap() {
            if let Some(call) = part.get("functionCall") {
                assert!(call["args"].is_object());
                let id = call["id"].as_str().unwrap_or_default();
                seen.tools.push((
                    id.into(),
                    call["name"].as_str().unwrap().into(),
                    call["args"].to_string(),
                ));
            } else if part["thought"] == true {
                seen.text
                    .entry("reasoning_content")
                    .or_default()
                    .push_str(part["text"].as_str().unwrap());
            } else {
                seen.text
                    .entry("content")
                    .or_default()
                    .push_str(part["text"].as_str().unwrap());
            }
        }
        if last {
            seen.finish_reason = match candidate["finishReason"].as_str().unwrap() {
                "STOP" if !seen.tools.is_empty() => "tool_calls",
                "STOP" => "stop",
                "MAX_TOKENS" => "length",
                "SAFETY" => "content_filter",
                other => panic!("{other}"),
            }
            .into();
            if let Some(usage) = chunk.get("usageMetadata") {
                let completion = usage["candidatesTokenCount"].as_u64().unwrap()
                    + usage["thoughtsTokenCount"].as_u64().unwrap_or(0);
                seen.usage = json!({"prompt_tokens": usage["promptTokenCount"], "completion_tokens": completion, "total_tokens": usage["totalTokenCount"]});
            }
        }
    }
    seen.text.retain(|_, v| !v.is_empty());
    seen
}

/// What a text completions client accumulates.
fn completions_view(frames: &[String]) -> Seen {
    assert_eq!(frames.last().map(String::as_str), Some("data: [DONE]\n\n"));
    let mut seen = Seen::default();
    for chunk in chat_chunks(frames) {
        assert_eq!(chunk["object"], "text_completion");
        let choice = &chunk["choices"][0];
        if let Some(text) = choice["text"].as_str() {
            seen.text.entry("content").or_default().push_str(text);
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

/// The chat view with only what `api` can express.
fn expressible(api: ClientApi, mut chat: Seen) -> Seen {
    let counts = |usage: &Value| {
        if usage.is_object() {
            json!({"prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"], "total_tokens": usage["total_tokens"]})
        } else {
            Value::Null
        }
    };
    match api {
        ClientApi::Completions => {
            // Text only; refusals as text; no reasoning, no tools. Usage as it is.
            let refusal = chat.text.remove("refusal").unwrap_or_default();
            chat.text.remove("reasoning_content");
            if !refusal.is_empty() {
                chat.text.entry("content").or_default().push_str(&refusal);
            }
            chat.tools.clear();
            chat
        }
        ClientApi::AnthropicMessages | ClientApi::Gemini => {
            let refusal = chat.text.remove("refusal").unwrap_or_default();
            if !refusal.is_empty() {
                chat.text
                    .entry("content")
                    .or_default()
                    .insert_str(0, &refusal);
            }
            if api == ClientApi::Gemini {
                for tool in &mut chat.tools {
                    let args: Value = serde_json::from_str(&tool.2).unwrap_or(json!({}));
                    tool.2 = args.to_string();
                    tool.0 = String::new();
                }
            }
            chat.usage = counts(&chat.usage);
            chat
        }
        _ => {
            chat.usage = counts(&chat.usage);
            chat
        }
    }
}

fn normalize_gemini_ids(mut seen: Seen) -> Seen {
    for tool in &mut seen.tools {
        tool.0 = String::new();
    }
    seen
}

#[test]
fn every_capture_reads_the_same_in_every_client_api() {
    for (provider, fixture) in FIXTURES {
        let raw = common::fixture(fixture);
        let chat = run(
            ClientApi::ChatCompletions,
            provider,
            common::content_type_of(fixture),
            uneven(&raw, 0),
        );
        let chat_view = client_view(&chat_chunks(&chat));
        assert!(
            !chat_view.text.is_empty()
                || !chat_view.tools.is_empty()
                || chat_view.finish_reason == "content_filter",
            "{fixture}: the capture says something"
        );
        assert!(!chat_view.finish_reason.is_empty(), "{fixture}");
        for api in [
            ClientApi::Responses,
            ClientApi::AnthropicMessages,
            ClientApi::Gemini,
            ClientApi::Completions,
        ] {
            let out = run(
                api,
                provider,
                common::content_type_of(fixture),
                uneven(&raw, 3),
            );
            let view = match api {
                ClientApi::Responses => responses_view(&out),
                ClientApi::AnthropicMessages => anthropic_view(&out),
                ClientApi::Gemini => normalize_gemini_ids(gemini_view(&out)),
                _ => completions_view(&out),
            };
            let mut want = expressible(api, client_view(&chat_chunks(&chat)));
            if api == ClientApi::AnthropicMessages
                && want.finish_reason == "stop"
                && !want.tools.is_empty()
            {
                // Gemini and others report `stop` with calls; Anthropic's clients see tool_use.
                want.finish_reason = "stop".into();
            }
            if api == ClientApi::Responses && !want.tools.is_empty() {
                want.finish_reason = "tool_calls".into();
            }
            if api == ClientApi::Gemini && !want.tools.is_empty() && want.finish_reason == "stop" {
                want.finish_reason = "tool_calls".into();
            }
            assert_eq!(view, want, "{fixture} as {api:?} (chat view {chat_view:?})");
        }
    }
}

#[test]
fn errors_reach_each_api_in_its_shape() {
    // A stream cut off after its first delta.
    let raw = common::fixture("openai/chat_text_include_usage.sse");
    let cut = raw[..raw.len() / 2].to_vec();
    let out = run(
        ClientApi::AnthropicMessages,
        "openai",
        "text/event-stream",
        vec![data(cut.clone())],
    );
    let events = typed(&out);
    let (event, error) = events.last().unwrap();
    assert_eq!(event.as_deref(), Some("error"));
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "api_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stream_truncated")
    );

    let out = run(
        ClientApi::Gemini,
        "openai",
        "text/event-stream",
        vec![data(cut.clone())],
    );
    let (_, error) = typed(&out).pop().unwrap();
    assert_eq!(error["error"]["code"], 502);
    assert_eq!(error["error"]["status"], "UNAVAILABLE");

    let out = run(
        ClientApi::Responses,
        "openai",
        "text/event-stream",
        vec![data(cut.clone())],
    );
    let events = typed(&out);
    let n = events.len();
    assert_eq!(events[n - 2].0.as_deref(), Some("error"));
    assert_eq!(events[n - 2].1["code"], "stream_truncated");
    assert_eq!(events[n - 1].0.as_deref(), Some("response.failed"));
    assert_eq!(events[n - 1].1["response"]["status"], "failed");
    assert_eq!(events[n - 1].1["sequence_number"], n - 1);
    // What was streamed before the failure is in the failed response.
    let text = events[n - 1].1["response"]["output"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert!(!text.is_empty());

    let out = run(
        ClientApi::Completions,
        "openai",
        "text/event-stream",
        vec![data(cut)],
    );
    assert!(
        out.last()
            .unwrap()
            .contains("\"code\":\"stream_truncated\"")
    );
}

#[test]
fn upstream_error_responses_keep_their_status_in_each_api_shape() {
    use http::StatusCode;
    for (api, check) in [
        (
            ClientApi::AnthropicMessages,
            (|v: &Value| v["type"] == "error" && v["error"]["type"] == "rate_limit_error")
                as fn(&Value) -> bool,
        ),
        (ClientApi::Gemini, |v: &Value| {
            v["error"]["code"] == 429 && v["error"]["status"] == "RESOURCE_EXHAUSTED"
        }),
        (ClientApi::Responses, |v: &Value| {
            v["error"]["code"] == "rate_limit_exceeded"
        }),
    ] {
        let stack = LlmStreamLayer::new().render_layer(RenderLayer::new().default_api(api));
        let upstream = tower::service_fn(|_req: Request<()>| async {
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(429)
                    .header("content-type", "application/json")
                    .body(http_body_util::Full::new(Bytes::from_static(br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#)))
                    .unwrap(),
            )
        });
        let service = stack.layer(upstream);
        let (status, body) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                use http_body_util::BodyExt;
                let response = service.oneshot(Request::new(())).await.unwrap();
                (
                    response.status(),
                    response.into_body().collect().await.unwrap().to_bytes(),
                )
            });
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert!(check(&value), "{api:?}: {value}");
    }
}

#[test]
fn native_text_completions_pass_through_untouched() {
    let raw = common::fixture("openai/completions_legacy_text.sse");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let [rendered, standard] = [ClientApi::Completions, ClientApi::ChatCompletions].map(|api| {
        let stack = LlmStreamLayer::new()
            .dialect(AnyDialect::for_provider("openai", Endpoint::Completions))
            .render_layer(RenderLayer::new().default_api(api));
        let response = rt.block_on(
            stack
                .layer(common::script::upstream(
                    "text/event-stream",
                    uneven(&raw, 4),
                ))
                .oneshot(Request::new(())),
        );
        rt.block_on(frames(response.unwrap().into_body()))
    });
    assert_eq!(rendered, standard);
}

#[test]
fn native_streams_pass_through_untouched() {
    // A Responses stream from an upstream that has the API, rendered for a Responses client.
    let raw = common::fixture("openai/responses_text.sse");
    let stack = LlmStreamLayer::new()
        .dialect(AnyDialect::for_provider("openai", Endpoint::Responses))
        .render_layer(RenderLayer::new().default_api(ClientApi::Responses));
    let plain =
        LlmStreamLayer::new().dialect(AnyDialect::for_provider("openai", Endpoint::Responses));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rendered = rt.block_on(
        stack
            .layer(common::script::upstream(
                "text/event-stream",
                uneven(&raw, 1),
            ))
            .oneshot(Request::new(())),
    );
    let rendered = rt.block_on(frames(rendered.unwrap().into_body()));
    let standard = rt.block_on(
        plain
            .layer(common::script::upstream(
                "text/event-stream",
                uneven(&raw, 1),
            ))
            .oneshot(Request::new(())),
    );
    let standard = rt.block_on(frames(standard.unwrap().into_body()));
    assert_eq!(rendered, standard);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(common::cases(24)))]

    /// Where the transport cuts a capture changes nothing a client of any API receives (but
    /// the ids the renderers mint).
    #[test]
    fn rendering_is_chunk_boundary_invariant(which in 0..FIXTURES.len(), seed in 0usize..1000, api in 1usize..5) {
        let (provider, fixture) = FIXTURES[which];
        let api = [ClientApi::ChatCompletions, ClientApi::Responses, ClientApi::AnthropicMessages, ClientApi::Gemini, ClientApi::Completions][api];
        let raw = common::fixture(fixture);
        let strip = |frames: Vec<String>| -> String { blank_ids(&frames.concat()) };
        let a = strip(run(api, provider, common::content_type_of(fixture), vec![data(raw.clone())]));
        let b = strip(run(api, provider, common::content_type_of(fixture), uneven(&raw, seed)));
        prop_assert_eq!(a, b);
    }
}

/// The text with the ids the renderers mint (`resp_…`, `msg_…`, `rs_…`, `fc_…`, Gemini's
/// `responseId`) blanked, and the times dialects stamp (`created`, `created_at`: two runs may
/// fall in two seconds).
fn blank_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let keys = [
        "\"id\":\"",
        "\"item_id\":\"",
        "\"responseId\":\"",
        "\"created\":",
        "\"created_at\":",
    ];
    while let Some((at, key)) = keys
        .iter()
        .filter_map(|k| rest.find(k).map(|i| (i, *k)))
        .min()
    {
        out.push_str(&rest[..at + key.len()]);
        rest = &rest[at + key.len()..];
        let end = if key.ends_with('"') {
            rest.find('"').unwrap_or(rest.len())
        } else {
            rest.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len())
        };
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn native_streams_cut_off_end_with_the_apis_own_error() {
    use tower_llm_stream::provider::anthropic::AnthropicNative;
    use tower_llm_stream::provider::gemini::GeminiNative;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (api, dialect, fixture) in [
        (
            ClientApi::AnthropicMessages,
            AnyDialect::AnthropicNative(AnthropicNative::new()),
            "anthropic/thinking_then_text.sse",
        ),
        (
            ClientApi::Gemini,
            AnyDialect::GeminiNative(GeminiNative::new()),
            "gemini/thinking.sse",
        ),
    ] {
        let raw = common::fixture(fixture);
        let stack = || {
            LlmStreamLayer::new()
                .dialect(dialect.clone())
                .render_layer(RenderLayer::new().default_api(api))
        };
        // Whole: byte for byte what the provider sent, but for canonical line endings.
        let whole = rt.block_on(
            stack()
                .layer(common::script::upstream(
                    "text/event-stream",
                    uneven(&raw, 2),
                ))
                .oneshot(Request::new(())),
        );
        let whole = rt.block_on(frames(whole.unwrap().into_body())).concat();
        let canonical = String::from_utf8(raw.clone())
            .unwrap()
            .replace("\r\n", "\n");
        assert_eq!(whole.trim_end(), canonical.trim_end(), "{fixture}");
        // Cut: the API's own error event last.
        let cut = raw[..raw.len() / 2].to_vec();
        let out = rt.block_on(
            stack()
                .layer(common::script::upstream(
                    "text/event-stream",
                    vec![data(cut)],
                ))
                .oneshot(Request::new(())),
        );
        let out = rt.block_on(frames(out.unwrap().into_body()));
        let (event, error) = typed(&out).pop().unwrap();
        match api {
            ClientApi::AnthropicMessages => {
                assert_eq!(event.as_deref(), Some("error"));
                assert_eq!(error["error"]["type"], "api_error");
            }
            _ => assert_eq!(error["error"]["status"], "UNAVAILABLE"),
        }
        assert!(error.to_string().contains("stream_truncated"), "{error}");
    }
}
