//! Provider keys an upstream echoes (in a 401 body, in an error event, in the text of a
//! stream) never reach the client or the log: canary keys for every provider, at
//! `RUST_LOG=trace`.

use llm_proxy as app;
use tower_llm_stream_test_support::client::client;
use tower_llm_stream_test_support::log::MemoryLog;
use tower_llm_stream_test_support::proxy::start_proxy;
use tower_llm_stream_test_support::raw;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tower_llm_stream::provider::bedrock::AwsCredentials;
use tower_llm_stream::provider::{Provider, ProviderKind, Providers};

const CANARIES: [&str; 8] = [
    "sk-openai-CANARY-1111111111",
    "sk-ant-CANARY-2222222222",
    "AIzaCANARY-3333333333",
    "cohere-CANARY-4444444444",
    "mistral-CANARY-5555555555",
    "AWS-SECRET-CANARY-6666666666",
    "AWS-TOKEN-CANARY-7777777777",
    "proxy-CANARY-8888888888",
];

/// Reads a request; what it carries that looks like a credential (every header value and
/// the query), for the echo.
async fn read_credentials(socket: &mut TcpStream) -> Option<(String, bool)> {
    let (head, body) = raw::read_request(socket).await?;
    let body = String::from_utf8_lossy(&body).into_owned();
    // The model decides: `unauthorized` gets a 401, any other a stream.
    let stream = !body.contains("unauthorized") && !head.contains("unauthorized");
    // Everything the request carried: the echo quotes it all.
    let echo: String = head
        .lines()
        .map(|l| l.replace('"', "'"))
        .collect::<Vec<_>>()
        .join(" | ");
    Some((echo, stream))
}

/// An upstream that quotes every credential it was sent: in a 401, or (for a stream) in a
/// text delta, then in an error event.
async fn echoing_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some((echo, stream)) = read_credentials(&mut socket).await else {
                    return;
                };
                let response = if stream {
                    let body = format!(
                        "data: {}\n\ndata: {}\n\n",
                        json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":format!("you sent {echo}")},"finish_reason":null}]}),
                        json!({"error":{"message":format!("invalid key in {echo}"),"type":"invalid_request_error"}})
                    );
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    let body = json!({"error":{"message":format!("Incorrect API key provided: {echo}"),"type":"invalid_request_error","code":"invalid_api_key"}}).to_string();
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nx-echo: {}\r\ncontent-length: {}\r\n\r\n{body}",
                        echo.replace(['\r', '\n'], " "),
                        body.len()
                    )
                };
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn echoed_keys_never_reach_the_client_or_the_log() {
    let log = MemoryLog::default();
    let upstream = echoing_upstream().await;
    let base = |version: &str| format!("http://{upstream}{version}");
    let providers = Providers::new()
        .with(
            Provider::new("openai", ProviderKind::OpenAiCompatible, &base("/v1"))
                .unwrap()
                .api_key(CANARIES[0]),
        )
        .with(
            Provider::new("anthropic", ProviderKind::Anthropic, &base("/v1"))
                .unwrap()
                .api_key(CANARIES[1]),
        )
        .with(
            Provider::new("gemini", ProviderKind::Gemini, &base("/v1beta"))
                .unwrap()
                .api_key(CANARIES[2]),
        )
        .with(
            Provider::new("cohere", ProviderKind::Cohere, &base("/v2"))
                .unwrap()
                .api_key(CANARIES[3]),
        )
        .with(
            Provider::new("mistral", ProviderKind::OpenAiCompatible, &base("/v1"))
                .unwrap()
                .api_key(CANARIES[4]),
        )
        .with(
            Provider::new("bedrock", ProviderKind::Bedrock, &base(""))
                .unwrap()
                .aws_credentials(AwsCredentials::new(
                    "AKIDCANARY",
                    CANARIES[5],
                    Some(CANARIES[6].to_owned()),
                    "us-east-1",
                )),
        );
    let config = app::Config {
        providers,
        api_key: Some(CANARIES[7].to_owned()),
        ..app::Config::default()
    };
    // The proxy's own log setup (main.rs), at trace, into `log`.
    let writer = log.clone();
    let make = app::logging::Redacting::new(move || writer.clone(), app::logging::secrets(&config));
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(make)
        .with_ansi(false)
        .init();
    let proxy = start_proxy(config).await;
    let client = client();
    let mut seen = String::new();
    for provider in [
        "openai",
        "anthropic",
        "gemini",
        "cohere",
        "mistral",
        "bedrock",
    ] {
        for (model, stream) in [
            ("m", true),
            ("m", false),
            ("unauthorized", true),
            ("unauthorized", false),
        ] {
            for (path, body) in [
                (
                    "/v1/chat/completions",
                    json!({"model": format!("{provider}/{model}"), "stream": stream, "messages": [{"role": "user", "content": "Hi"}]}),
                ),
                (
                    "/v1/messages",
                    json!({"model": format!("{provider}/{model}"), "max_tokens": 5, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]}),
                ),
            ] {
                let request = Request::post(format!("http://{proxy}{path}"))
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {}", CANARIES[7]))
                    .body(Full::new(Bytes::from(body.to_string())))
                    .unwrap();
                let response =
                    tokio::time::timeout(Duration::from_secs(20), client.request(request))
                        .await
                        .expect("answered")
                        .unwrap();
                let (parts, body) = response.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let text = format!("{:?}\n{}\n", parts.headers, String::from_utf8_lossy(&body));
                for canary in CANARIES {
                    assert!(
                        !text.contains(canary),
                        "{provider}/{model} {path} stream={stream}: {canary} reached the client:\n{text}"
                    );
                }
                seen.push_str(&text);
            }
        }
    }
    // The echoes did happen: what they quoted was redacted.
    assert!(seen.contains("[redacted]"), "{seen}");
    assert!(seen.contains("x-echo"), "the 401s' echo header: {seen}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = log.text();
    assert!(log.contains("TRACE"), "the log is at trace");
    for canary in CANARIES {
        assert!(!log.contains(canary), "{canary} reached the log");
    }
}
