//! Hostile clients and broken upstreams, over loopback: each probe of the hardening issue
//! (slow heads and bodies, too many connections, huge replies, compressed and pretty-printed
//! upstreams, endless streams, clients that stop reading, shutdown, HTTP/2 abuse) bounded in
//! count and time.

use llm_proxy as app;
use tower_llm_stream_test_support::client::{chat, data, post};
use tower_llm_stream_test_support::log;
use tower_llm_stream_test_support::proxy::start_proxy_until;
use tower_llm_stream_test_support::raw::{self, chunk, closed_within, head, upstream};

use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_llm_stream::provider::{Provider, ProviderKind, Providers};

/// How long a client waits for the proxy's whole answer.
const BOUND: Duration = Duration::from_secs(20);

/// Reads one request: its head and body as one text.
async fn read_request(socket: &mut TcpStream) -> Option<String> {
    let (head, body) = raw::read_request(socket).await?;
    Some(head + &String::from_utf8_lossy(&body))
}

/// The proxy, with `openai` (OpenAI-compatible) and `anthropic` providers at `upstream`.
async fn proxy(upstream: SocketAddr, adjust: impl FnOnce(&mut app::Config)) -> SocketAddr {
    proxy_until(
        upstream,
        adjust,
        std::future::pending(),
        Duration::from_secs(1),
    )
    .await
}

async fn proxy_until(
    upstream: SocketAddr,
    adjust: impl FnOnce(&mut app::Config),
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> SocketAddr {
    let base = format!("http://{upstream}/v1");
    let providers = Providers::new()
        .with(
            Provider::new("openai", ProviderKind::OpenAiCompatible, &base)
                .unwrap()
                .api_key("sk-openai-canary-0123456789"),
        )
        .with(
            Provider::new("anthropic", ProviderKind::Anthropic, &base)
                .unwrap()
                .api_key("sk-ant-canary-0123456789"),
        );
    let mut config = app::Config {
        providers,
        ..app::Config::default()
    };
    adjust(&mut config);
    start_proxy_until(config, shutdown, grace).await
}

#[tokio::test]
async fn connections_that_trickle_or_send_nothing_are_closed_after_the_header_timeout() {
    let up = upstream(|_| async {}).await.addr();
    let proxy = proxy(up, |c| c.header_timeout = Duration::from_millis(500)).await;
    let mut sockets = Vec::new();
    for _ in 0..20 {
        sockets.push(TcpStream::connect(proxy).await.unwrap());
    }
    // Half trickle an HTTP/1 head, a few an HTTP/2 preface, the rest send nothing.
    let trickle = async {
        for byte in 0..12 {
            for (i, socket) in sockets.iter_mut().enumerate() {
                let text: &[u8] = if i % 4 == 0 {
                    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                } else if i % 2 == 0 {
                    b"POST /v1/chat/completions HTTP/1.1\r\n"
                } else {
                    continue;
                };
                let _ = socket.write_all(&text[byte..byte + 1]).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    trickle.await;
    for (i, socket) in sockets.iter_mut().enumerate() {
        assert!(
            closed_within(socket, Duration::from_secs(3)).await,
            "connection {i} is still open"
        );
    }
    // The proxy still serves.
    let (status, _, _) = post(proxy, "/health", String::new(), BOUND).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_body_that_stalls_is_a_408_and_its_connection_is_let_go() {
    let up = upstream(|_| async {}).await.addr();
    let proxy = proxy(up, |c| c.body_timeout = Duration::from_millis(400)).await;
    for (path, content_type) in [
        ("/v1/chat/completions", "application/json"),
        ("/v1/messages", "application/json"),
        (
            "/v1/audio/transcriptions",
            "multipart/form-data; boundary=b0undary",
        ),
    ] {
        let mut socket = TcpStream::connect(proxy).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {content_type}\r\ncontent-length: 4000000\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let start = if content_type.starts_with("multipart") {
            "--b0undary\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n"
        } else {
            "{\"model\":\"openai/m\",\"messages\":["
        };
        socket.write_all(start.as_bytes()).await.unwrap();
        socket.write_all(&vec![b' '; 100_000]).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer))
            .await
            .expect("answered and closed within 5 s")
            .ok();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("request_timeout"), "{path}: {answer}");
        assert!(answer.contains("--body-timeout"), "{path}: {answer}");
    }
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let up = upstream(|_| async {}).await.addr();
    let proxy = proxy(up, |c| {
        c.max_connections = 3;
        c.header_timeout = Duration::from_secs(30);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(proxy).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiting = tokio::spawn(async move {
        let mut socket = TcpStream::connect(proxy).await.unwrap();
        socket
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a fourth connection was served");
    drop(held.pop());
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_folded_reply_over_the_limit_is_a_502_and_the_upstream_is_let_go() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let seen = dropped.clone();
    // An Anthropic stream with no end: text deltas of 1 KiB for as long as it is read.
    let up = upstream(move |mut socket| {
        let seen = seen.clone();
        async move {
            let mut out = head(200, "text/event-stream", "").into_bytes();
            out.extend(chunk(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\",\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"));
            let delta = format!(
                "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}\n\n",
                "x".repeat(1024)
            );
            if socket.write_all(&out).await.is_err() {
                return;
            }
            for _ in 0..100_000 {
                if socket.write_all(&chunk(delta.as_bytes())).await.is_err() {
                    seen.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
        }
    })
    .await
    .addr();
    let proxy = proxy(up, |c| c.max_response_bytes = 256 * 1024).await;
    let (status, _, body) = post(
        proxy,
        "/v1/chat/completions",
        chat("anthropic/c", false),
        BOUND,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "response_too_large", "{body}");
    assert!(body.contains("--max-response-bytes"), "{body}");
    for _ in 0..100 {
        if dropped.load(Ordering::SeqCst) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the upstream was never let go");
}

const PRETTY: &str = "data: {\"id\": \"c\", \"object\": \"chat.completion.chunk\", \"created\": 1, \"model\": \"m\", \"choices\": [{\"index\": 0, \"delta\": {\"role\": \"assistant\", \"content\": \"Hi\"}, \"finish_reason\": null}]}\n\n\
data: {\"id\": \"c\", \"object\": \"chat.completion.chunk\", \"created\": 1, \"model\": \"m\", \"choices\": [{\"index\": 0, \"delta\": {}, \"finish_reason\": \"length\"}]}\n\n\
data: {\"id\": \"c\", \"object\": \"chat.completion.chunk\", \"created\": 1, \"model\": \"m\", \"choices\": [], \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 1, \"total_tokens\": 4}}\n\n\
data: [DONE]\n\n";

/// What a client of the pretty upstream must see: `length` and the usage, once, last.
fn assert_pretty_outcome(body: &str) {
    let events = data(body);
    assert_eq!(events.last(), Some(&"[DONE]"), "{body}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length", "{body}");
    assert_eq!(last["usage"]["completion_tokens"], 1, "{body}");
    let reasons = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .count();
    assert_eq!(reasons, 1, "one finish reason: {body}");
}

#[tokio::test]
async fn pretty_printed_usage_and_finish_reasons_reach_the_last_chunk() {
    let up = upstream(|mut socket| async move {
        let mut out = head(200, "text/event-stream", "").into_bytes();
        out.extend(chunk(PRETTY.as_bytes()));
        out.extend(b"0\r\n\r\n");
        let _ = socket.write_all(&out).await;
    })
    .await
    .addr();
    let proxy = proxy(up, |_| {}).await;
    let (status, _, body) =
        post(proxy, "/v1/chat/completions", chat("openai/m", true), BOUND).await;
    assert_eq!(status, StatusCode::OK);
    assert_pretty_outcome(&body);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn compressed_upstreams_are_decoded_and_asked_not_to_compress() {
    let accept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let heads = accept.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let Some(request) = read_request(&mut socket).await else {
                    return;
                };
                let request = request.to_ascii_lowercase();
                heads.lock().unwrap().push(request.clone());
                let (status, content_type, body) = if !request.contains("unauthorized") {
                    (200, "text/event-stream", gzip(PRETTY.as_bytes()))
                } else {
                    (
                        401,
                        "application/json",
                        gzip(br#"{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}"#),
                    )
                };
                let mut out = head(status, content_type, "content-encoding: gzip\r\n").into_bytes();
                // In two pieces: the gzip stream is decoded as it comes.
                let half = body.len() / 2;
                out.extend(chunk(&body[..half]));
                out.extend(chunk(&body[half..]));
                out.extend(b"0\r\n\r\n");
                let _ = socket.write_all(&out).await;
            });
        }
    });
    let proxy = proxy(up, |_| {}).await;
    let (status, headers, body) =
        post(proxy, "/v1/chat/completions", chat("openai/m", true), BOUND).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.get("content-encoding").is_none(), "{headers:?}");
    assert_pretty_outcome(&body);
    let (status, headers, body) = post(
        proxy,
        "/v1/chat/completions",
        chat("openai/unauthorized", false),
        BOUND,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers.get("content-encoding").is_none(), "{headers:?}");
    let error: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(error["error"]["message"], "bad key", "{body}");
    for request in accept.lock().unwrap().iter() {
        assert!(request.contains("accept-encoding: identity"), "{request}");
    }
}

/// An OpenAI-compatible upstream that sends one chunk, then one every `every` forever (or
/// until the proxy lets it go, counted in `gone`).
async fn endless(every: Duration, gone: Arc<AtomicUsize>) -> SocketAddr {
    upstream(move |mut socket| {
        let gone = gone.clone();
        async move {
            let event = b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\n";
            if socket
                .write_all(head(200, "text/event-stream", "").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            loop {
                if socket.write_all(&chunk(event)).await.is_err() {
                    gone.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(every).await;
            }
        }
    })
    .await
    .addr()
}

#[tokio::test]
async fn an_endless_stream_ends_at_the_stream_deadline() {
    let gone = Arc::new(AtomicUsize::new(0));
    let up = endless(Duration::from_millis(20), gone.clone()).await;
    let proxy = proxy(up, |c| c.stream_deadline = Duration::from_millis(700)).await;
    let started = std::time::Instant::now();
    let (status, _, body) =
        post(proxy, "/v1/chat/completions", chat("openai/m", true), BOUND).await;
    assert_eq!(status, StatusCode::OK);
    let last = data(&body).last().copied().unwrap();
    let error: Value = serde_json::from_str(last).unwrap();
    assert_eq!(error["error"]["code"], "stream_deadline", "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_its_upstream_cancelled() {
    let gone = Arc::new(AtomicUsize::new(0));
    // Fast, big events: the client's and the proxy's socket buffers fill within a second.
    let seen = gone.clone();
    let up = upstream(move |mut socket| {
        let seen = seen.clone();
        async move {
            let event = format!(
                "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":null}}]}}\n\n",
                "y".repeat(16 * 1024)
            );
            if socket
                .write_all(head(200, "text/event-stream", "").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            for _ in 0..100_000 {
                if socket.write_all(&chunk(event.as_bytes())).await.is_err() {
                    seen.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    })
    .await
    .addr();
    // The proxy's log, to see the stream recorded as stalled.
    let log = log::global();
    let proxy = proxy(up, |c| c.timeout = Duration::from_millis(800)).await;
    let mut socket = TcpStream::connect(proxy).await.unwrap();
    let body = chat("openai/m", true);
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    // Reads nothing.
    for _ in 0..300 {
        if gone.load(Ordering::SeqCst) == 1 {
            // And the client's connection was closed too.
            assert!(closed_within(&mut socket, Duration::from_secs(20)).await);
            for _ in 0..100 {
                let text = log.text();
                if text
                    .lines()
                    .any(|l| l.contains("stream ended") && l.contains("outcome=\"client_stalled\""))
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let text = log.text();
            panic!("no stream ended as client_stalled in the log:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the upstream of a client that reads nothing was never cancelled");
}

#[tokio::test]
async fn at_the_end_of_the_grace_open_streams_get_server_shutting_down() {
    let gone = Arc::new(AtomicUsize::new(0));
    let up = endless(Duration::from_millis(200), gone).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy = proxy_until(
        up,
        |_| {},
        async move {
            let _ = stopped.await;
        },
        Duration::from_millis(300),
    )
    .await;
    let client = tokio::spawn(post(
        proxy,
        "/v1/messages",
        json!({"model": "openai/m", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}).to_string(), BOUND,
    ));
    let chat_client = tokio::spawn(post(
        proxy,
        "/v1/chat/completions",
        chat("openai/m", true),
        BOUND,
    ));
    // A client that wanted one object: the folded stream ends early, a 503 in its API.
    let whole_client = tokio::spawn(post(
        proxy,
        "/v1/messages",
        json!({"model": "openai/m", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}).to_string(), BOUND,
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(()).unwrap();
    let (status, _, body) = client.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.ends_with("\n\n"), "a clean end: {body}");
    let last = body.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: error\n"), "{body}");
    assert!(last.contains("server_shutting_down"), "{body}");
    let (status, _, body) = chat_client.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let error: Value = serde_json::from_str(data(&body).last().unwrap()).unwrap();
    assert_eq!(error["error"]["code"], "server_shutting_down", "{body}");
    let (status, _, body) = whole_client.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("server is shutting down"), "{body}");
}

#[tokio::test]
async fn http2_clients_get_bounded_streams_and_rapid_resets_end_the_connection() {
    let up = upstream(|_| async {}).await.addr();
    let proxy = proxy(up, |_| {}).await;
    let socket = TcpStream::connect(proxy).await.unwrap();
    let (mut client, connection) = h2::client::handshake(socket).await.unwrap();
    let connection = tokio::spawn(connection);
    // Wait for the server's SETTINGS to be applied.
    client = client.ready().await.unwrap();
    let request = || {
        Request::post(format!("http://{proxy}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(())
            .unwrap()
    };
    let (response, mut body) = client.send_request(request(), false).unwrap();
    body.send_data(Bytes::from(chat("demo/instant", true)), true)
        .unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    // Rapid reset: streams opened and reset at once, many more than the proxy allows.
    let mut refused = false;
    for _ in 0..2_000 {
        let ready = match tokio::time::timeout(Duration::from_secs(5), client.clone().ready()).await
        {
            Ok(Ok(ready)) => ready,
            _ => {
                refused = true;
                break;
            }
        };
        client = ready;
        match client.send_request(request(), false) {
            Ok((response, mut stream)) => {
                stream.send_reset(h2::Reason::CANCEL);
                drop(response);
            }
            Err(_) => {
                refused = true;
                break;
            }
        }
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(
        refused || ended.is_ok(),
        "2,000 rapid resets and the connection is still open"
    );
    // The proxy still serves others.
    let (status, _, _) = post(
        proxy,
        "/v1/chat/completions",
        chat("demo/instant", false),
        BOUND,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn http2_connections_announce_their_stream_limit() {
    let up = upstream(|_| async {}).await.addr();
    let proxy = proxy(up, |_| {}).await;
    let socket = TcpStream::connect(proxy).await.unwrap();
    let (client, mut connection) = h2::client::handshake(socket).await.unwrap();
    // Drive the connection until the server's settings arrive.
    let client = tokio::select! {
        ready = client.ready() => ready.unwrap(),
        _ = &mut connection => panic!("the connection ended"),
    };
    let mut max = connection.max_concurrent_send_streams();
    for _ in 0..50 {
        if max == app::H2_MAX_STREAMS as usize {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(20), &mut connection).await;
        max = connection.max_concurrent_send_streams();
    }
    assert_eq!(max, app::H2_MAX_STREAMS as usize);
    drop(client);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let up = upstream(|_| async {}).await.addr();
    let proxy = proxy(up, |c| c.header_timeout = Duration::from_millis(500)).await;
    let mut socket = TcpStream::connect(proxy).await.unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = socket.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Kept alive, then idle: a slot held for nothing.
    assert!(
        closed_within(&mut socket, Duration::from_secs(3)).await,
        "an idle keep-alive connection is still open"
    );
}
