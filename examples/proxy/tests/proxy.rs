//! End to end: the example proxy on a real loopback
//! socket, in front of upstream servers on 127.0.0.1 that replay the captured provider streams
//! in uneven chunks, stall, reset, or fail, and record what they were sent.

use llm_proxy as app;
use tower_llm_stream_test_support as common;
use tower_llm_stream_test_support::client::{self, client};
use tower_llm_stream_test_support::proxy::start_proxy;

use bytes::Bytes;
use common::dialects::{assert_standard, chat_chunks, client_view, run_stack_as};
use common::script::{ScriptBody, Step, data, wait_secs};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tower_llm_stream::provider::bedrock::AwsCredentials;
use tower_llm_stream::provider::{AnyDialect, Endpoint};
use tower_llm_stream::provider::{Provider, ProviderKind, Providers};

/// What the upstream received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    version: http::Version,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Recorder {
    requests: Arc<Mutex<Vec<Received>>>,
    /// Set when a stalled stream's body is dropped: the proxy let go of the upstream.
    stall_dropped: Arc<AtomicBool>,
    /// Connections accepted.
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Recorder {
    fn last(&self) -> Received {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request reached the upstream")
    }
    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// Uneven chunks: no chunk is a whole event.
fn uneven(raw: &[u8]) -> Vec<Step> {
    let mut steps = Vec::new();
    let (mut at, mut size) = (0, 1);
    while at < raw.len() {
        let end = (at + size).min(raw.len());
        steps.push(data(raw[at..end].to_vec()));
        at = end;
        size = size % 89 + 7;
    }
    steps
}

/// The fixture a scenario replays for a path.
fn fixture_for(scenario: &str, path: &str) -> Option<&'static str> {
    Some(match scenario {
        "openai" if path.ends_with("/chat/completions") => {
            "openai/chat_tool_call_include_usage.sse"
        }
        "openai" if path.ends_with("/completions") => "openai/completions_legacy_text.sse",
        "openai" if path.ends_with("/responses") => "openai/responses_function_call.sse",
        "openai" if path.ends_with("/audio/speech") => "openai/audio_speech_sse.sse",
        "openai" if path.ends_with("/audio/transcriptions") => {
            "openai/audio_transcription_stream.sse"
        }
        "anthropic" => "anthropic/tool_use.sse",
        "claude" => "anthropic/thinking_then_text.sse",
        "gemini" => "gemini/function_call.sse",
        "cohere" => "cohere/tool_call.sse",
        "ollama" => "ollama/generate_stream.ndjson",
        "bedrock" => "bedrock/converse_stream_tool_use.bin",
        "groq" => "groq/midstream_error_tool_use_failed.sse",
        _ => return None,
    })
}

fn respond(scenario: &str, path: &str, recorder: &Recorder) -> Response<ScriptBody> {
    let sse = |steps: Vec<Step>| {
        Response::builder()
            .header("content-type", "text/event-stream")
            .header("connection", "keep-alive, x-upstream-private")
            .header("x-upstream-private", "hop")
            .header("set-cookie", "upstream=1")
            .body(ScriptBody::new(steps))
            .unwrap()
    };
    if let Some(fixture) = fixture_for(scenario, path) {
        let content_type = common::content_type_of(fixture);
        let mut response = sse(uneven(&common::fixture(fixture)));
        response
            .headers_mut()
            .insert("content-type", content_type.parse().unwrap());
        return response;
    }
    match scenario {
        "stall" => {
            let mut body = ScriptBody::new([data("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n"), Step::Stall]);
            body.dropped = Some(recorder.stall_dropped.clone());
            Response::builder().header("content-type", "text/event-stream").body(body).unwrap()
        }
        "reset" => sse(vec![
            data("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\ndata: {\"id\""),
            wait_secs(0.02),
            Step::Fail("connection reset by peer"),
        ]),
        "truncated" => {
            let fixture = common::fixture("openai/chat_text_include_usage.sse");
            sse(uneven(&fixture[..fixture.len() / 2]))
        }
        "slowhead" => sse(vec![data("data: {}\n\n")]),
        "limited" => Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("content-type", "application/json")
            .body(ScriptBody::new([data(r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#)]))
            .unwrap(),
        "json" => Response::builder()
            .header("content-type", "application/json")
            .body(ScriptBody::new([data(r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"whole"},"finish_reason":"stop"}]}"#)]))
            .unwrap(),
        _ => Response::builder().status(404).body(ScriptBody::new([data("no such scenario")])).unwrap(),
    }
}

/// The replaying upstream: the first path segment picks the scenario.
async fn spawn_upstream(recorder: Recorder) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            recorder.connections.fetch_add(1, Ordering::SeqCst);
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let recorder = recorder.clone();
                    async move {
                        let path = request.uri().path_and_query().unwrap().to_string();
                        let version = request.version();
                        let headers = request.headers().clone();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        recorder.requests.lock().unwrap().push(Received {
                            path: path.clone(),
                            version,
                            headers,
                            body,
                        });
                        let scenario = path
                            .trim_start_matches('/')
                            .split('/')
                            .next()
                            .unwrap_or("")
                            .to_owned();
                        if scenario == "slowhead" {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                        }
                        Ok::<_, std::convert::Infallible>(respond(&scenario, &path, &recorder))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

struct Harness {
    proxy: SocketAddr,
    recorder: Recorder,
}

/// The proxy in front of the replaying upstream, with `adjust` applied to its configuration.
async fn start(adjust: impl FnOnce(&mut app::Config)) -> Harness {
    let recorder = Recorder::default();
    let upstream = spawn_upstream(recorder.clone()).await;
    let base = |scenario: &str, version: &str| format!("http://{upstream}/{scenario}{version}");
    let provider =
        |name: &str, kind, version: &str| Provider::new(name, kind, &base(name, version)).unwrap();
    let mut providers = Providers::new()
        .with(provider("openai", ProviderKind::OpenAiCompatible, "/v1").api_key("sk-openai-secret"))
        .with(provider("anthropic", ProviderKind::Anthropic, "/v1").api_key("sk-ant-secret"))
        .with(provider("claude", ProviderKind::Anthropic, "/v1").api_key("sk-ant-secret"))
        .with(provider("gemini", ProviderKind::Gemini, "/v1beta").api_key("gemini-secret"))
        .with(provider("cohere", ProviderKind::Cohere, "/v2").api_key("cohere-secret"))
        .with(provider("ollama", ProviderKind::Ollama, ""))
        .with(
            provider("bedrock", ProviderKind::Bedrock, "").aws_credentials(AwsCredentials::new(
                "AKIDPROXYTEST",
                "aws-secret-key",
                Some("aws-session-token".to_owned()),
                "eu-west-3",
            )),
        )
        .with(provider("groq", ProviderKind::OpenAiCompatible, "/v1").api_key("gsk-secret"));
    for scenario in ["stall", "reset", "truncated", "slowhead", "limited", "json"] {
        providers.insert(provider(scenario, ProviderKind::OpenAiCompatible, "/v1"));
    }
    let mut config = app::Config {
        providers,
        ..app::Config::default()
    };
    adjust(&mut config);
    let proxy = start_proxy(config).await;
    Harness { proxy, recorder }
}

impl Harness {
    async fn send(
        &self,
        request: http::request::Builder,
        body: impl Into<Bytes>,
    ) -> (http::response::Parts, String) {
        client::send(self.proxy, request, body).await
    }

    /// A streaming chat request to `provider`; it must succeed.
    async fn stream_chat(&self, provider: &str) -> (http::response::Parts, String) {
        let model = format!("{provider}/some-model");
        let (head, body) = self.post("/v1/chat/completions", chat(&model, true)).await;
        assert_eq!(head.status, StatusCode::OK, "{provider}: {body}");
        (head, body)
    }

    async fn post(&self, path: &str, body: Value) -> (http::response::Parts, String) {
        self.send(
            Request::post(path)
                .header("content-type", "application/json")
                .header("authorization", "Bearer sk-client-key"),
            body.to_string(),
        )
        .await
    }
}

/// The events of a standard stream, as whole frames.
fn events(body: &str) -> Vec<String> {
    body.split_inclusive("\n\n").map(str::to_owned).collect()
}

/// A Responses API stream: `response.created` first, `response.completed` last, sequence
/// numbers from 0 without gaps.
fn assert_responses_stream(body: &str) {
    let frames = events(body);
    assert!(frames[0].starts_with("event: response.created\n"), "{body}");
    let last = frames.last().unwrap();
    assert!(last.starts_with("event: response.completed\n"), "{body}");
    for (i, frame) in frames.iter().enumerate() {
        let data: Value =
            serde_json::from_str(frame.split_once("data: ").unwrap().1.trim_end()).unwrap();
        assert_eq!(data["sequence_number"], i, "{frame}");
    }
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
           "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]})
}

/// The client's view of a fixture through the layer stack alone, in process: what the proxy
/// must deliver over the wire.
async fn expected(kind: &'static str, fixture: &'static str) -> common::dialects::Seen {
    let out = tokio::task::spawn_blocking(move || {
        let content_type = common::content_type_of(fixture);
        let dialect = AnyDialect::for_provider(kind, Endpoint::ChatCompletions);
        run_stack_as(content_type, dialect, vec![data(common::fixture(fixture))]).1
    })
    .await
    .unwrap();
    client_view(&chat_chunks(&out))
}

/// Provider, its dialect's kind and the fixture its test upstream replays.
const CHAT_FIXTURES: [(&str, &str, &str); 6] = [
    (
        "openai",
        "openai",
        "openai/chat_tool_call_include_usage.sse",
    ),
    ("anthropic", "anthropic", "anthropic/tool_use.sse"),
    ("gemini", "gemini", "gemini/function_call.sse"),
    ("cohere", "cohere", "cohere/tool_call.sse"),
    ("ollama", "ollama", "ollama/generate_stream.ndjson"),
    ("bedrock", "bedrock", "bedrock/converse_stream_tool_use.bin"),
];

#[tokio::test]
async fn chat_streams_from_every_dialect_arrive_standard() {
    let h = start(|_| {}).await;
    for &(provider, kind, fixture) in &CHAT_FIXTURES {
        let (head, body) = h.stream_chat(provider).await;
        assert_eq!(
            head.headers["content-type"], "text/event-stream",
            "{provider}"
        );
        assert_eq!(head.headers["cache-control"], "no-cache", "{provider}");
        for private in ["x-upstream-private", "set-cookie", "connection"] {
            assert!(
                !head.headers.contains_key(private),
                "{provider}: {private} leaked"
            );
        }
        assert_arrives_as_in_process(provider, kind, fixture, &body).await;
    }
}

/// The stream the client got is standard and what the in-process stack makes of the fixture.
async fn assert_arrives_as_in_process(
    provider: &str,
    kind: &'static str,
    fixture: &'static str,
    body: &str,
) {
    let chunks = assert_standard(provider, &events(body));
    let seen = client_view(&chunks);
    assert_eq!(seen, expected(kind, fixture).await, "{provider}");
    assert!(
        !seen.text.is_empty() || !seen.tools.is_empty(),
        "{provider}: nothing came through"
    );
}

#[tokio::test]
async fn requests_are_translated_and_carry_only_the_providers_own_key() {
    let h = start(|_| {}).await;
    let cases = [
        (
            "openai",
            "/openai/v1/chat/completions",
            "authorization",
            "Bearer sk-openai-secret",
        ),
        (
            "anthropic",
            "/anthropic/v1/messages",
            "x-api-key",
            "sk-ant-secret",
        ),
        (
            "gemini",
            "/gemini/v1beta/models/some-model:streamGenerateContent?alt=sse",
            "x-goog-api-key",
            "gemini-secret",
        ),
        (
            "cohere",
            "/cohere/v2/chat",
            "authorization",
            "Bearer cohere-secret",
        ),
    ];
    for (provider, path, header, value) in cases {
        h.post(
            "/v1/chat/completions",
            chat(&format!("{provider}/some-model"), true),
        )
        .await;
        let sent = h.recorder.last();
        assert_eq!(sent.path, path);
        assert_eq!(sent.headers[header], value, "{provider}");
        let all: String = sent
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("")))
            .collect();
        assert!(
            !all.contains("sk-client-key"),
            "{provider}: the client's key went upstream:\n{all}"
        );
        for other in [
            "sk-openai-secret",
            "sk-ant-secret",
            "gemini-secret",
            "cohere-secret",
            "gsk-secret",
        ] {
            assert!(
                value.contains(other) || !all.contains(other),
                "{provider}: another provider's key:\n{all}"
            );
        }
        let body: Value = serde_json::from_slice(&sent.body).unwrap();
        match provider {
            "openai" => {
                assert_eq!(body["model"], "some-model");
                assert_eq!(body["stream_options"]["include_usage"], true);
            }
            "anthropic" => {
                assert_eq!(
                    body["messages"][0]["content"][0]["text"],
                    "What is the weather in Paris?"
                );
                assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
                assert_eq!(body["stream"], true);
            }
            "gemini" => {
                assert_eq!(
                    body["contents"][0]["parts"][0]["text"],
                    "What is the weather in Paris?"
                );
                assert_eq!(
                    body["tools"][0]["functionDeclarations"][0]["name"],
                    "get_weather"
                );
            }
            _ => assert_eq!(body["model"], "some-model"),
        }
    }
    // Bedrock: no key, a SigV4 signature over what is sent, for its region and service.
    h.post(
        "/v1/chat/completions",
        chat("bedrock/anthropic.claude-3-5-haiku-20241022-v1:0", true),
    )
    .await;
    let sent = h.recorder.last();
    assert_eq!(
        sent.path,
        "/bedrock/model/anthropic%2Eclaude%2D3%2D5%2Dhaiku%2D20241022%2Dv1%3A0/converse-stream"
    );
    let auth = sent.headers["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDPROXYTEST/"),
        "{auth}"
    );
    assert!(auth.contains("/eu-west-3/bedrock/aws4_request"), "{auth}");
    assert!(
        auth.contains("SignedHeaders=") && auth.contains("x-amz-date"),
        "{auth}"
    );
    assert!(!auth.contains("aws-secret-key"));
    assert_eq!(sent.headers["x-amz-security-token"], "aws-session-token");
    assert_eq!(sent.headers["accept"], "application/vnd.amazon.eventstream");
    assert!(sent.headers.contains_key("x-amz-date"));
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body["messages"][0]["content"][0]["text"],
        "What is the weather in Paris?"
    );
    assert_eq!(
        body["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "get_weather"
    );
    h.post("/v1/chat/completions", chat("ollama/llama3.2", true))
        .await;
    let sent = h.recorder.last();
    assert_eq!(sent.path, "/ollama/api/chat");
    assert!(!sent.headers.contains_key("authorization"));
    assert_eq!(
        serde_json::from_slice::<Value>(&sent.body).unwrap()["model"],
        "llama3.2"
    );
}

#[tokio::test]
async fn non_streaming_requests_to_translated_providers_get_one_chat_completion() {
    let h = start(|_| {}).await;
    let (head, body) = h
        .post("/v1/chat/completions", chat("anthropic/claude", false))
        .await;
    assert_eq!(head.status, StatusCode::OK, "{body}");
    assert_eq!(head.headers["content-type"], "application/json");
    let completion: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(completion["object"], "chat.completion");
    let expected = expected("anthropic", "anthropic/tool_use.sse").await;
    let message = &completion["choices"][0]["message"];
    assert_eq!(
        message["tool_calls"][0]["function"]["name"],
        expected.tools[0].1.as_str()
    );
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        expected.tools[0].2.as_str()
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(completion["usage"], expected.usage);
    // The upstream was asked for a stream all the same.
    assert_eq!(
        serde_json::from_slice::<Value>(&h.recorder.last().body).unwrap()["stream"],
        true
    );

    // OpenAI-compatible: forwarded as is.
    let (head, body) = h.post("/v1/chat/completions", chat("json/m", false)).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["choices"][0]["message"]["content"],
        "whole"
    );
}

#[tokio::test]
async fn completions_responses_and_audio_go_through() {
    let h = start(|_| {}).await;
    let (_, body) = h
        .post(
            "/v1/completions",
            json!({"model": "openai/gpt-3.5-turbo-instruct", "prompt": "Say", "stream": true}),
        )
        .await;
    let chunks = chat_chunks(&events(&body));
    assert!(
        chunks.iter().all(|c| c["object"] == "text_completion"),
        "{body}"
    );
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert_eq!(
        serde_json::from_slice::<Value>(&h.recorder.last().body).unwrap()["stream_options"]["include_usage"],
        true
    );

    let (_, body) = h
        .post(
            "/v1/responses",
            json!({"model": "openai/gpt-4.1", "input": "Weather?", "stream": true}),
        )
        .await;
    assert_responses_stream(&body);
    assert!(
        serde_json::from_slice::<Value>(&h.recorder.last().body)
            .unwrap()
            .get("stream_options")
            .is_none()
    );

    let (_, body) = h.post("/v1/audio/speech", json!({"model": "openai/gpt-4o-mini-tts", "input": "Hi", "voice": "alloy", "stream_format": "sse"})).await;
    assert!(body.contains("\"type\":\"speech.audio.done\""), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"));

    // Anthropic has no Responses API: the request is translated to Messages, the answer
    // rendered as Responses events.
    let (head, body) = h
        .post(
            "/v1/responses",
            json!({"model": "anthropic/claude", "input": "Weather?", "instructions": "Be brief.", "stream": true, "max_output_tokens": 99}),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK, "{body}");
    assert_responses_stream(&body);
    assert!(body.contains("\"type\":\"function_call\""), "{body}");
    let sent = h.recorder.last();
    assert!(sent.path.ends_with("/v1/messages"), "{}", sent.path);
    let sent: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(sent["system"], "Be brief.");
    assert_eq!(sent["max_tokens"], 99);
    // And text completions from Gemini.
    let (head, body) = h
        .post(
            "/v1/completions",
            json!({"model": "gemini/gemini-2.5-pro", "prompt": "Say hi", "stream": true}),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK, "{body}");
    assert!(body.contains("\"object\":\"text_completion\""), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
}

/// The Anthropic Messages and Gemini routes, over every kind of upstream, streamed and
/// whole; errors and refusals in each API's shape.
#[tokio::test]
async fn anthropic_and_gemini_clients_reach_every_provider() {
    let h = start(|_| {}).await;
    for provider in ["openai", "anthropic", "gemini", "cohere", "bedrock"] {
        let model = format!("{provider}/some-model");
        let request = json!({"model": model, "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}]});
        for path in ["/v1/messages", "/anthropic/v1/messages"] {
            let (head, body) = h.post(path, request.clone()).await;
            assert_eq!(head.status, StatusCode::OK, "{provider} {path}: {body}");
            assert!(
                body.starts_with("event: message_start\n"),
                "{provider}: {body}"
            );
            assert!(body.contains("\"type\":\"tool_use\""), "{provider}: {body}");
            assert!(
                body.contains("\"stop_reason\":\"tool_use\""),
                "{provider}: {body}"
            );
            assert!(
                body.ends_with("}\n\n")
                    && body
                        .rsplit("\n\n")
                        .nth(1)
                        .unwrap()
                        .starts_with("event: message_stop\n"),
                "{provider}: {body}"
            );
        }
        let mut whole = request.clone();
        whole["stream"] = false.into();
        let (head, body) = h.post("/v1/messages", whole).await;
        assert_eq!(head.status, StatusCode::OK, "{provider}: {body}");
        let message: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(message["type"], "message");
        assert_eq!(message["stop_reason"], "tool_use", "{body}");
        assert!(
            message["content"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["type"] == "tool_use" && b["input"].is_object()),
            "{body}"
        );

        let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "What is the weather in Paris?"}]}],
            "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {"location": {"type": "STRING"}}}}]}]});
        for prefix in ["/v1beta", "/gemini/v1beta", "/v1"] {
            let path = format!("{prefix}/models/{model}:streamGenerateContent?alt=sse");
            let (head, body) = h.post(&path, gemini.clone()).await;
            assert_eq!(head.status, StatusCode::OK, "{provider} {path}: {body}");
            let last = body.trim_end().rsplit("\n\n").next().unwrap();
            let last: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(last["candidates"][0]["finishReason"], "STOP", "{body}");
            assert!(body.contains("\"functionCall\""), "{provider}: {body}");
        }
        let (head, body) = h
            .post(
                &format!("/v1beta/models/{model}:generateContent"),
                gemini.clone(),
            )
            .await;
        assert_eq!(head.status, StatusCode::OK, "{provider}: {body}");
        let whole: Value = serde_json::from_str(&body).unwrap();
        assert!(
            whole["candidates"][0]["content"]["parts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["functionCall"]["args"].is_object()),
            "{body}"
        );
        // Without `alt=sse`, Gemini streams a JSON array.
        let (head, body) = h
            .post(
                &format!("/v1beta/models/{model}:streamGenerateContent"),
                gemini,
            )
            .await;
        assert_eq!(head.status, StatusCode::OK, "{provider}: {body}");
        assert!(
            serde_json::from_str::<Value>(&body).unwrap().is_array(),
            "{body}"
        );
    }
    // The Gemini request reached an OpenAI-compatible upstream as a chat request.
    let (_, _) = h
        .post(
            "/v1beta/models/openai/gpt-4o:streamGenerateContent?alt=sse",
            json!({"systemInstruction": {"parts": [{"text": "Be brief."}]}, "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                   "generationConfig": {"maxOutputTokens": 7, "stopSequences": ["END"]}}),
        )
        .await;
    let sent: Value = serde_json::from_slice(&h.recorder.last().body).unwrap();
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(sent["max_tokens"], 7);
    assert_eq!(sent["stop"], json!(["END"]));
    assert_eq!(sent["model"], "gpt-4o");

    // Errors in each API's shape.
    let (head, body) = h
        .post(
            "/v1/messages",
            json!({"model": "nope/x", "max_tokens": 5, "messages": []}),
        )
        .await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["type"], "error", "{body}");
    assert_eq!(error["error"]["type"], "invalid_request_error", "{body}");
    let (head, body) = h
        .post(
            "/v1beta/models/nope/x:generateContent",
            json!({"contents": []}),
        )
        .await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST);
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["status"], "INVALID_ARGUMENT", "{body}");
    let (head, body) = h.post("/v1/messages", json!({"model": "openai/x", "max_tokens": 5, "top_k": 3, "messages": [{"role": "user", "content": "x"}]})).await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST);
    assert!(body.contains("top_k"), "{body}");
    let (head, body) = h
        .post(
            "/v1beta/models/openai/x:generateContent",
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}}),
        )
        .await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST);
    assert!(body.contains("candidateCount"), "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["status"],
        "INVALID_ARGUMENT"
    );
    let (head, body) = h
        .post(
            "/v1/messages/count_tokens",
            json!({"model": "openai/x", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(head.status, StatusCode::NOT_IMPLEMENTED);
    assert!(body.contains("\"type\":\"error\""), "{body}");
    // To an Anthropic provider it is forwarded, model renamed, with the provider's key.
    let (_, _) = h
        .post(
            "/anthropic/v1/messages/count_tokens",
            json!({"model": "anthropic/claude-x", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    let sent = h.recorder.last();
    assert!(
        sent.path.ends_with("/v1/messages/count_tokens"),
        "{}",
        sent.path
    );
    assert_eq!(sent.headers["x-api-key"], "sk-ant-secret");
    assert_eq!(
        serde_json::from_slice::<Value>(&sent.body).unwrap()["model"],
        "claude-x"
    );
    let (head, body) = h.post("/gemini/v1beta/files", json!({})).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["status"],
        "NOT_FOUND"
    );
    // A bare model goes to the API's own provider.
    let (head, body) = h.post("/v1/messages", json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "x"}]})).await;
    assert_eq!(head.status, StatusCode::OK, "{body}");
    assert!(h.recorder.last().path.starts_with("/anthropic/"));
    assert_eq!(
        serde_json::from_slice::<Value>(&h.recorder.last().body).unwrap()["model"],
        "claude-sonnet-4-5"
    );
}

/// With `PROXY_API_KEY`, each API's own credential header counts, and is never forwarded.
#[tokio::test]
async fn client_keys_in_each_api_header() {
    let h = start(|config| config.api_key = Some("proxy-key".into())).await;
    let messages = json!({"model": "anthropic/claude", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "x"}]});
    for (name, value, path) in [
        ("x-api-key", "proxy-key", "/v1/messages"),
        (
            "x-goog-api-key",
            "proxy-key",
            "/v1beta/models/anthropic/claude:streamGenerateContent?alt=sse",
        ),
        ("authorization", "Bearer proxy-key", "/v1/messages"),
        (
            "x-other",
            "",
            "/v1beta/models/anthropic/claude:streamGenerateContent?alt=sse&key=proxy-key",
        ),
    ] {
        let body = if path.contains("v1beta") {
            json!({"contents": [{"parts": [{"text": "x"}]}]}).to_string()
        } else {
            messages.to_string()
        };
        let (head, text) = h
            .send(
                Request::post(path)
                    .header("content-type", "application/json")
                    .header(name, value),
                body,
            )
            .await;
        assert_eq!(head.status, StatusCode::OK, "{name}: {text}");
        let sent = h.recorder.last();
        assert_eq!(
            sent.headers["x-api-key"], "sk-ant-secret",
            "the provider's key, not the client's"
        );
        assert!(!sent.headers.contains_key("x-goog-api-key"));
    }
    let (head, body) = h
        .send(
            Request::post("/v1/messages").header("x-api-key", "wrong"),
            messages.to_string(),
        )
        .await;
    assert_eq!(head.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["type"],
        "authentication_error"
    );
}

fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, filename, value) in parts {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(filename) = filename {
            out.extend_from_slice(
                format!("; filename=\"{filename}\"\r\nContent-Type: audio/wav").as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[tokio::test]
async fn transcription_uploads_are_rewritten_and_streamed() {
    let h = start(|c| c.max_upload_bytes = 64 * 1024).await;
    let audio: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    // The file before the model: held until the model field arrives.
    for order in [0, 1] {
        let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![
            ("file", Some("model.wav"), &audio),
            ("model", None, b"openai/gpt-4o-mini-transcribe"),
            ("stream", None, b"true"),
        ];
        if order == 1 {
            parts.swap(0, 1);
        }
        let form = multipart("b0undary", &parts);
        let (head, body) = h
            .send(
                Request::post("/v1/audio/transcriptions")
                    .header("content-type", "multipart/form-data; boundary=b0undary"),
                form.clone(),
            )
            .await;
        assert_eq!(head.status, StatusCode::OK, "{body}");
        assert!(body.contains("\"type\":\"transcript.text.done\""), "{body}");
        let sent = h.recorder.last();
        assert_eq!(sent.path, "/openai/v1/audio/transcriptions");
        assert_eq!(sent.headers["authorization"], "Bearer sk-openai-secret");
        let rewritten = multipart(
            "b0undary",
            &parts
                .iter()
                .map(|&(n, f, v)| {
                    (
                        n,
                        f,
                        if n == "model" {
                            b"gpt-4o-mini-transcribe".as_slice()
                        } else {
                            v
                        },
                    )
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            sent.body, rewritten,
            "the form arrives whole, with only the model renamed"
        );
    }
    // Over the limit: 413 before anything goes upstream.
    let before = h.recorder.count();
    let big = vec![0u8; 70 * 1024];
    let form = multipart(
        "b",
        &[
            ("model", None, b"openai/whisper-1"),
            ("file", Some("a.wav"), &big),
        ],
    );
    let (head, body) = h
        .send(
            Request::post("/v1/audio/transcriptions")
                .header("content-type", "multipart/form-data; boundary=b"),
            form,
        )
        .await;
    assert_eq!(head.status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(h.recorder.count(), before);
    let form = multipart("b", &[("file", Some("a.wav"), b"RIFF")]);
    let (head, body) = h
        .send(
            Request::post("/v1/audio/transcriptions")
                .header("content-type", "multipart/form-data; boundary=b"),
            form,
        )
        .await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST);
    assert!(body.contains("missing_model"), "{body}");
}

#[tokio::test]
async fn bad_requests_are_clear_json_errors_and_never_reach_an_upstream() {
    let h = start(|c| c.max_body_bytes = 1024).await;
    let cases: Vec<(&str, http::request::Builder, Vec<u8>, StatusCode, &str)> = vec![
        (
            "unknown provider",
            Request::post("/v1/chat/completions"),
            br#"{"model":"nope/x","messages":[]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "unknown_provider",
        ),
        (
            "no prefix",
            Request::post("/v1/chat/completions"),
            br#"{"model":"gpt-4o","messages":[]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_model",
        ),
        (
            "unknown demo model",
            Request::post("/v1/chat/completions"),
            br#"{"model":"demo/gpt-9","messages":[]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "unknown_model",
        ),
        (
            "no model",
            Request::post("/v1/chat/completions"),
            br#"{"messages":[]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "missing_model",
        ),
        (
            "malformed JSON",
            Request::post("/v1/chat/completions"),
            br#"{"model":"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "not an object",
            Request::post("/v1/chat/completions"),
            b"[1,2]".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "untranslatable",
            Request::post("/v1/chat/completions"),
            br#"{"model":"anthropic/c","n":3,"messages":[{"role":"user","content":"x"}]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "unsupported_parameter",
        ),
        (
            "too large",
            Request::post("/v1/chat/completions"),
            vec![b' '; 2048],
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
        ),
        (
            "wrong method",
            Request::get("/v1/chat/completions"),
            vec![],
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "unknown path",
            Request::post("/v2/chat"),
            vec![],
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "bad timeout",
            Request::post("/v1/chat/completions").header("x-request-timeout", "soon"),
            br#"{"model":"demo/echo","messages":[{"role":"user","content":"x"}]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request_timeout",
        ),
    ];
    for (what, request, body, status, code) in cases {
        let (head, text) = h.send(request, body).await;
        assert_eq!(head.status, status, "{what}: {text}");
        assert_eq!(head.headers["content-type"], "application/json", "{what}");
        let error: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
        assert_eq!(error["error"]["code"], code, "{what}: {text}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    assert_eq!(h.recorder.count(), 0);
    // A body streamed without content-length is held to the limit too.
    let (head, _) = h
        .send(
            Request::post("/v1/chat/completions").header("transfer-encoding", "chunked"),
            vec![b' '; 4096],
        )
        .await;
    assert_eq!(head.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn upstream_failures_become_error_events_or_statuses() {
    let h = start(|c| c.timeout = Duration::from_millis(300)).await;
    let code_of = |body: &str| {
        let last = events(body).pop().unwrap();
        let data: Value =
            serde_json::from_str(last.strip_prefix("data: ").unwrap().trim_end()).unwrap();
        data["error"]["code"].as_str().unwrap().to_owned()
    };
    // Stall mid-stream: the idle timeout ends it, and the upstream connection is let go.
    let (head, body) = h.post("/v1/chat/completions", chat("stall/m", true)).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(code_of(&body), "stream_idle_timeout", "{body}");
    assert!(
        body.contains("\"content\":\"Hi\""),
        "what arrived before is kept: {body}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        h.recorder.stall_dropped.load(Ordering::SeqCst),
        "the stalled upstream body was not dropped"
    );

    let (_, body) = h.post("/v1/chat/completions", chat("reset/m", true)).await;
    assert_eq!(code_of(&body), "upstream_body_error", "{body}");
    let (_, body) = h
        .post("/v1/chat/completions", chat("truncated/m", true))
        .await;
    assert_eq!(code_of(&body), "stream_truncated", "{body}");
    assert!(!body.contains("[DONE]"));
    let (_, body) = h
        .post("/v1/chat/completions", chat("groq/llama", true))
        .await;
    assert_eq!(code_of(&body), "tool_use_failed", "{body}");

    // Before the head: statuses kept, bodies normalized.
    let (head, body) = h
        .post("/v1/chat/completions", chat("limited/m", true))
        .await;
    assert_eq!(head.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "rate_limit_exceeded"
    );
    let (head, body) = h
        .post("/v1/chat/completions", chat("slowhead/m", true))
        .await;
    assert_eq!(head.status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    // x-request-timeout lifts the default, up to the maximum.
    let (head, body) = h
        .send(
            Request::post("/v1/chat/completions").header("x-request-timeout", "0.05"),
            chat("slowhead/m", true).to_string(),
        )
        .await;
    assert_eq!(head.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        body.contains("within 0.05s"),
        "the client's timeout was not used: {body}"
    );
    assert!(
        !h.recorder.last().headers.contains_key("x-request-timeout"),
        "the timeout header is the proxy's own"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502() {
    let h = start(|c| {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        c.providers.insert(
            Provider::new(
                "dead",
                ProviderKind::OpenAiCompatible,
                &format!("http://{addr}/v1"),
            )
            .unwrap(),
        );
    })
    .await;
    let (head, body) = h.post("/v1/chat/completions", chat("dead/m", true)).await;
    assert_eq!(head.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "upstream_unavailable"
    );
}

#[tokio::test]
async fn the_demo_provider_streams_in_real_time_offline() {
    let h = start(|_| {}).await;
    let (head, body) = h.send(Request::get("/v1/models"), "").await;
    assert_eq!(head.status, StatusCode::OK);
    let models: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["demo/echo", "demo/slow", "demo/instant", "demo/broken"]
    );
    assert_eq!(
        h.send(Request::get("/health"), "").await.1,
        r#"{"status":"ok"}"#
    );

    // Paced: the chunks arrive over time, not at once.
    let request = Request::post(format!("http://{}/v1/chat/completions", h.proxy))
        .body(Full::new(Bytes::from(json!({"model": "demo/echo", "stream": true, "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]}).to_string())))
        .unwrap();
    let mut body = client().request(request).await.unwrap().into_body();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    let started = std::time::Instant::now();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            arrivals.push(started.elapsed());
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    let frames = events(&text);
    let chunks = assert_standard("demo", &frames);
    let seen = client_view(&chunks);
    assert_eq!(seen.text["content"], app::demo::reply("Hi")[..8].concat());
    assert_eq!(seen.finish_reason, "length");
    assert_eq!(seen.usage["completion_tokens"], 8);
    assert!(
        arrivals.last().unwrap().saturating_sub(arrivals[0]) >= Duration::from_millis(200),
        "{arrivals:?}"
    );

    // The same reply whole, for completions and responses too.
    let (_, body) = h
        .post(
            "/v1/completions",
            json!({"model": "demo/instant", "prompt": "Hi"}),
        )
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["choices"][0]["text"],
        app::demo::reply("Hi").concat()
    );
    let (_, body) = h
        .post(
            "/v1/responses",
            json!({"model": "demo/instant", "input": "Hi", "stream": true}),
        )
        .await;
    assert_responses_stream(&body);
    let (_, body) = h.post("/v1/chat/completions", json!({"model": "demo/broken", "stream": true, "messages": [{"role": "user", "content": "Hi"}]})).await;
    assert!(body.ends_with("\"code\":\"upstream_body_error\",\"message\":\"the upstream connection failed: the demo provider dropped the connection (demo/broken)\"}}\n\n"), "{body}");
}

#[tokio::test]
async fn a_client_that_leaves_releases_the_upstream_at_once() {
    let h = start(|c| c.timeout = Duration::from_secs(30)).await;
    let request = Request::post(format!("http://{}/v1/chat/completions", h.proxy))
        .body(Full::new(Bytes::from(chat("stall/m", true).to_string())))
        .unwrap();
    let response = client().request(request).await.unwrap();
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap(); // the first event arrived
    drop(body);
    for _ in 0..100 {
        if h.recorder.stall_dropped.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the upstream stream was not released after the client left");
}

#[tokio::test]
async fn the_proxy_key_guards_the_endpoints() {
    let h = start(|c| c.api_key = Some("proxy-secret".into())).await;
    let (head, body) = h
        .post("/v1/chat/completions", chat("demo/instant", true))
        .await;
    assert_eq!(head.status, StatusCode::UNAUTHORIZED, "{body}");
    let (head, _) = h
        .send(
            Request::post("/v1/chat/completions").header("authorization", "Bearer proxy-secret"),
            chat("demo/instant", true).to_string(),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(
        h.send(Request::get("/health"), "").await.0.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_playground_page_is_self_contained() {
    let h = start(|c| c.api_key = Some("proxy-secret".into())).await;
    let (head, page) = h.send(Request::get("/"), "").await;
    assert_eq!(head.status, StatusCode::OK, "the page needs no key");
    assert_eq!(head.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        head.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!page.contains(external), "external asset: {external}");
    }
    for part in [
        "/v1/models",
        "/v1/chat/completions",
        "/v1/responses",
        "AbortController",
        "TextDecoder",
        "[DONE]",
        "x-resumable",
        "/v1/streams/",
        "last-event-id",
    ] {
        assert!(page.contains(part), "{part}");
    }
}

#[tokio::test]
async fn upstream_connections_are_reused_and_closed_when_a_client_leaves() {
    let h = start(|_| {}).await;
    for _ in 0..5 {
        let (head, body) = h.post("/v1/chat/completions", chat("openai/m", true)).await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(body.ends_with("data: [DONE]\n\n"));
    }
    // One thread, one client at a time: one upstream connection served all five.
    assert_eq!(h.recorder.connections.load(Ordering::SeqCst), 1);

    // A client that leaves mid-stream: that connection is closed, not pooled.
    let request = Request::post(format!("http://{}/v1/chat/completions", h.proxy))
        .body(Full::new(Bytes::from(chat("stall/m", true).to_string())))
        .unwrap();
    let mut body = client().request(request).await.unwrap().into_body();
    body.frame().await.unwrap().unwrap();
    drop(body);
    // It was the pooled connection (all scenarios share one upstream server); it is gone now,
    // and the next request gets a fresh one and a whole stream.
    let (head, body) = h.post("/v1/chat/completions", chat("openai/m", true)).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(h.recorder.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn with_upstream_http2_streams_share_connections_and_arrive_the_same() {
    let h = start(|c| c.upstream_http2 = true).await;
    for &(provider, kind, fixture) in &CHAT_FIXTURES[..2] {
        let (_, body) = h.stream_chat(provider).await;
        assert_arrives_as_in_process(provider, kind, fixture, &body).await;
        let received = h.recorder.last();
        assert_eq!(received.version, http::Version::HTTP_2, "{provider}");
        assert!(
            received.path.starts_with(&format!("/{provider}/")),
            "{}",
            received.path
        );
    }
    // Both went over one connection (one thread, prior knowledge over plain HTTP).
    assert_eq!(h.recorder.connections.load(Ordering::SeqCst), 1);

    // 150 streams open at once: at most 100 share a connection, so a second one opens.
    let held: Vec<_> = (0..150)
        .map(|_| {
            let request = Request::post(format!("http://{}/v1/chat/completions", h.proxy))
                .body(Full::new(Bytes::from(chat("stall/m", true).to_string())))
                .unwrap();
            tokio::spawn(async move {
                let mut body = client().request(request).await.unwrap().into_body();
                body.frame().await.unwrap().unwrap(); // the first event: the stream is open
                body
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for stream in held {
        bodies.push(stream.await.unwrap());
    }
    assert_eq!(h.recorder.connections.load(Ordering::SeqCst), 2);

    // Clients that leave release their upstream streams (a reset, not a closed connection).
    drop(bodies);
    for _ in 0..200 {
        if h.recorder.stall_dropped.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(h.recorder.stall_dropped.load(Ordering::SeqCst));
    let (head, body) = h.post("/v1/chat/completions", chat("openai/m", true)).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(
        h.recorder.connections.load(Ordering::SeqCst),
        2,
        "the connections are reused"
    );
}

/// `--without-layers` (the benchmark's floor): the same routing and request rewriting, the
/// stream relayed as the upstream sent it, and the normal path unchanged beside it.
#[tokio::test]
async fn without_layers_the_upstream_stream_arrives_as_it_was_sent() {
    let bare = start(|config| config.without_layers = true).await;
    let (head, body) = bare.stream_chat("openai").await;
    assert_eq!(head.headers["content-type"], "text/event-stream");
    let fixture = common::fixture("openai/chat_tool_call_include_usage.sse");
    assert_eq!(body.as_bytes(), &fixture[..], "relayed byte for byte");
    let sent: Value = serde_json::from_slice(&bare.recorder.last().body).unwrap();
    assert_eq!(
        sent["model"], "some-model",
        "the request is still rewritten"
    );
    assert_eq!(sent["stream_options"]["include_usage"], true);

    let layered = start(|_| {}).await;
    let (_, standard) = layered.stream_chat("openai").await;
    assert_ne!(standard, body, "the layers rewrite this stream");
    assert_eq!(
        client_view(&chat_chunks(&events(&standard))),
        expected("openai", "openai/chat_tool_call_include_usage.sse").await
    );
}

/// Reasoning signatures survive a tool loop through every client API: the upstream's
/// signature reaches the client (turn 1), and the client's copy reaches the upstream (turn 2).
#[tokio::test]
async fn reasoning_signatures_round_trip_through_every_client_api() {
    let h = start(|_| {}).await;
    // Turn 1: Anthropic's thinking signature, Gemini's call signature, as each client sees them.
    // The same requests to each model from an Anthropic and an OpenAI chat client.
    for (model, anthropic_sees, chat_sees) in [
        (
            "claude/c",
            "\"type\":\"signature_delta\",\"signature\":\"EvMCCkYICxgCKkCHP2cS",
            "\"reasoning_signature\":\"EvMCCkYICxgCKkCHP2cS",
        ),
        (
            "gemini/g",
            "\"type\":\"tool_use\"",
            "\"extra_content\":{\"google\":{\"thought_signature\":\"EpwICpkIAXLI2nxlU6gsWZaZHRYkX1orzuM8",
        ),
    ] {
        let (_, body) = h.post("/v1/messages", json!({"model": model, "max_tokens": 9, "stream": true, "messages": [{"role": "user", "content": "x"}]})).await;
        assert!(body.contains(anthropic_sees), "{model}: {body}");
        let (_, body) = h.post("/v1/chat/completions", json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "x"}]})).await;
        assert!(body.contains(chat_sees), "{model}: {body}");
    }
    let gemini = json!({"contents": [{"parts": [{"text": "x"}]}]});
    for (path, request, seen) in [
        // Gemini to Gemini is forwarded as it came (Gemini's own spacing).
        (
            "/v1beta/models/gemini/g:streamGenerateContent?alt=sse",
            gemini.clone(),
            "\"thoughtSignature\": \"EpwICpkIAXLI2nxlU6gsWZaZHRYkX1orzuM8",
        ),
        (
            "/v1beta/models/gemini/g:generateContent",
            gemini,
            "\"thoughtSignature\":\"EpwICpkIAXLI2nxlU6gsWZaZHRYkX1orzuM8",
        ),
        (
            "/v1/responses",
            json!({"model": "claude/c", "stream": true, "input": "x"}),
            "\"encrypted_content\":\"EvMCCkYICxgCKkCHP2cS",
        ),
        (
            "/v1/responses",
            json!({"model": "claude/c", "input": "x"}),
            "\"encrypted_content\":\"EvMCCkYICxgCKkCHP2cS",
        ),
    ] {
        let (_, body) = h.post(path, request).await;
        assert!(body.contains(seen), "{path}: {body}");
    }
    // Not streamed: the signature on the message's thinking block.
    let (_, body) = h.post("/v1/messages", json!({"model": "claude/c", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]})).await;
    let message: Value = serde_json::from_str(&body).unwrap();
    assert!(
        message["content"][0]["signature"]
            .as_str()
            .unwrap()
            .starts_with("EvMCCkYICxgCKkCHP2cS"),
        "{body}"
    );

    // Turn 2, Anthropic signature back to Anthropic (and Bedrock), from each client API.
    let thinking =
        json!({"type": "thinking", "thinking": "I should call the tool.", "signature": "SIG-A"});
    let call = json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}});
    let anthropic_turn = json!({"model": "claude/c", "max_tokens": 2000, "stream": true,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": [thinking, call]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]}]});
    let responses_turn = json!({"model": "claude/c", "stream": true, "reasoning": {"effort": "low"},
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        "input": [{"role": "user", "content": "Weather?"},
                  {"type": "reasoning", "summary": [{"type": "summary_text", "text": "I should call the tool."}], "encrypted_content": "SIG-A"},
                  {"type": "function_call", "call_id": "toolu_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                  {"type": "function_call_output", "call_id": "toolu_1", "output": "18C"}]});
    let chat_turn = json!({"model": "claude/c", "stream": true, "reasoning_effort": "low",
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        "messages": [{"role": "user", "content": "Weather?"},
                     {"role": "assistant", "content": null, "reasoning_content": "I should call the tool.", "reasoning_signature": "SIG-A",
                      "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                     {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}]});
    for (path, request) in [
        ("/v1/messages", &anthropic_turn),
        ("/v1/responses", &responses_turn),
        ("/v1/chat/completions", &chat_turn),
    ] {
        let (head, body) = h.post(path, request.clone()).await;
        assert_eq!(head.status, StatusCode::OK, "{path}: {body}");
        let sent: Value = serde_json::from_slice(&h.recorder.last().body).unwrap();
        assert_eq!(
            sent["messages"][1]["content"][0],
            json!({"type": "thinking", "thinking": "I should call the tool.", "signature": "SIG-A"}),
            "{path}: {sent}"
        );
        assert_eq!(
            sent["messages"][1]["content"][1]["type"], "tool_use",
            "{path}"
        );
        assert_eq!(
            sent["messages"][2]["content"][0]["tool_use_id"], "toolu_1",
            "{path}"
        );
        assert_eq!(sent["thinking"]["type"], "enabled", "{path}: {sent}");
        assert!(
            sent["max_tokens"].as_u64().unwrap()
                > sent["thinking"]["budget_tokens"].as_u64().unwrap(),
            "{path}: {sent}"
        );
    }
    let mut bedrock = chat_turn.clone();
    bedrock["model"] = "bedrock/anthropic.claude".into();
    let (head, body) = h.post("/v1/chat/completions", bedrock).await;
    assert_eq!(head.status, StatusCode::OK, "{body}");
    let sent: Value = serde_json::from_slice(&h.recorder.last().body).unwrap();
    assert_eq!(
        sent["messages"][1]["content"][0],
        json!({"reasoningContent": {"reasoningText": {"text": "I should call the tool.", "signature": "SIG-A"}}}),
        "{sent}"
    );
    assert_eq!(
        sent["additionalModelRequestFields"]["thinking"]["budget_tokens"],
        1024
    );

    // Turn 2, Gemini's call signature back to Gemini, from the Gemini and chat APIs.
    let gemini_turn = json!({"contents": [{"role": "user", "parts": [{"text": "Weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG-G"}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": "18C"}}}]}],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 512, "includeThoughts": true}},
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "OBJECT"}}]}]});
    let chat_turn = json!({"model": "gemini/g", "stream": true, "messages": [{"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}, "extra_content": {"google": {"thought_signature": "SIG-G"}}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\":\"18C\"}"}],
        "thinking": {"type": "enabled", "budget_tokens": 512}});
    for (path, request) in [
        (
            "/v1beta/models/gemini/g:streamGenerateContent?alt=sse",
            gemini_turn,
        ),
        ("/v1/chat/completions", chat_turn),
    ] {
        let (head, body) = h.post(path, request).await;
        assert_eq!(head.status, StatusCode::OK, "{path}: {body}");
        let sent: Value = serde_json::from_slice(&h.recorder.last().body).unwrap();
        assert_eq!(
            sent["contents"][1]["parts"][0]["thoughtSignature"], "SIG-G",
            "{path}: {sent}"
        );
        assert_eq!(
            sent["contents"][2]["parts"][0]["functionResponse"]["response"],
            json!({"temp": "18C"}),
            "{path}: {sent}"
        );
        assert_eq!(
            sent["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 512, "includeThoughts": true}),
            "{path}"
        );
    }
}

/// Inputs that looked valid but were not: a timeout below the timer's resolution, a model that
/// is a path or too long, a repeated `model` key. Each is a 400 that says what is wrong.
#[tokio::test]
async fn small_inputs_that_are_not_what_they_seem_are_400s() {
    let h = start(|_| {}).await;
    let (head, body) = h
        .send(
            Request::post("/v1/chat/completions").header("x-request-timeout", "0.0000000001"),
            chat("demo/instant", true).to_string(),
        )
        .await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("at least 0.001"), "{body}");
    for model in ["gemini/..", "gemini/../../v1/files"] {
        let (head, body) = h.post("/v1/chat/completions", chat(model, true)).await;
        assert_eq!(head.status, StatusCode::BAD_REQUEST, "{model}: {body}");
        assert!(body.contains("segment"), "{body}");
    }
    let (head, body) = h
        .post(
            "/v1/chat/completions",
            chat(&format!("openai/{}", "x".repeat(2000)), true),
        )
        .await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("at most 256 bytes") && body.len() < 600,
        "{body}"
    );
    let (head, body) = h
        .send(
            Request::post("/v1/chat/completions"),
            r#"{"model":"demo/echo","model":"openai/x","messages":[{"role":"user","content":"x"}]}"#,
        )
        .await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("more than one") && body.contains("key: send it once"),
        "{body}"
    );
    assert_eq!(h.recorder.count(), 0, "none of them reached an upstream");
}
