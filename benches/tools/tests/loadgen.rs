//! The load generator and the mock upstream of the performance runner, against each other
//! and through the example proxy: they work, and no stream loses an event. No timing is asserted.

use llm_bench_tools::{load, mock, report};
use llm_proxy as app;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_llm_stream::provider::{Provider, ProviderKind, Providers};
use tower_llm_stream_test_support::proxy::start_proxy;

async fn spawn_mock(config: mock::MockConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mock::serve(listener, config));
    addr
}

async fn spawn_proxy(upstream: SocketAddr) -> SocketAddr {
    let providers = Providers::new().with(
        Provider::new(
            "mock",
            ProviderKind::OpenAiCompatible,
            &format!("http://{upstream}"),
        )
        .unwrap(),
    );
    let config = app::Config {
        providers,
        ..app::Config::default()
    };
    start_proxy(config).await
}

fn load(addr: SocketAddr, concurrency: usize, requests: usize) -> load::LoadConfig {
    load::LoadConfig {
        url: format!("http://{addr}/v1/chat/completions")
            .parse()
            .unwrap(),
        body: r#"{"model":"mock/m","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#
            .into(),
        authorization: None,
        headers: Vec::new(),
        concurrency,
        requests,
        expect_content: Some(20),
        hold: None,
        ramp: Duration::ZERO,
    }
}

#[test]
fn the_mock_renders_openais_stream_shape() {
    let frames = mock::render(3);
    assert_eq!(frames.len(), 3 + 4);
    let text: String = frames
        .iter()
        .map(|f| std::str::from_utf8(f).unwrap())
        .collect();
    let mut check = report::StreamCheck::default();
    check.push(text.as_bytes());
    assert_eq!(
        (check.events, check.content_chunks, check.done),
        (7, 3, true)
    );
    assert!(
        text.contains(
            "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}"
        )
    );
}

fn assert_all_whole(report: &report::Report, streams: usize, events_per_stream: usize) {
    let counts = (
        report.requests,
        report.ok,
        report.lost,
        report.failures,
        report.http_errors,
    );
    assert_eq!(counts, (streams, streams, 0, 0, 0), "{}", report.human());
    assert_eq!(
        report.events,
        streams * events_per_stream,
        "{}",
        report.human()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_arrives_whole_direct_and_through_the_proxy() {
    let mock = spawn_mock(mock::MockConfig::default()).await;
    let direct = load::run(load(mock, 20, 200)).await;
    assert_all_whole(&direct, 200, 24); // role, 20 content, finish, usage, [DONE]
    let proxy = spawn_proxy(mock).await;
    let proxied = load::run(load(proxy, 20, 200)).await;
    assert_all_whole(&proxied, 200, 23); // finish and usage arrive as one last chunk
    assert!(proxied.ttfe.p50 <= proxied.total.p50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_events_and_failures_are_counted() {
    // The mock sends 20 content chunks; expecting 21 makes every stream count as lost.
    let mock = spawn_mock(mock::MockConfig {
        events: 20,
        ..Default::default()
    })
    .await;
    let mut config = load(mock, 4, 8);
    config.expect_content = Some(21);
    let report = load::run(config).await;
    assert_eq!((report.ok, report.lost), (0, 8));

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let report = load::run(load(addr, 2, 4)).await;
    assert_eq!(report.failures, 4);
    assert!(report.first_failure.unwrap().starts_with("connect"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_are_held_open_together() {
    let mock = spawn_mock(mock::MockConfig {
        events: 5,
        interval: Duration::from_secs(60),
        ..Default::default()
    })
    .await;
    let proxy = spawn_proxy(mock).await;
    let mut config = load(proxy, 100, 100);
    config.hold = Some(Duration::from_secs(2));
    let report = load::run(config).await;
    assert_eq!(report.ok, 100, "{}", report.human());
    assert_eq!(report.max_open, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_headers_go_with_every_request() {
    // An upstream that streams only to requests carrying the header (a gateway's routing
    // headers, e.g. Portkey's `x-portkey-provider`), and answers 400 otherwise.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let frames = mock::render(20);
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let frames = frames.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let routed = request.headers().get("x-route")
                            == Some(&http::HeaderValue::from_static("a b: c"));
                        let body: bytes::Bytes = frames.concat().into();
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(if routed { 200 } else { 400 })
                                    .body(http_body_util::Full::new(body))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let unrouted = load::run(load(addr, 2, 4)).await;
    assert_eq!(unrouted.http_errors, 4, "{}", unrouted.human());
    let mut config = load(addr, 2, 10);
    config.headers = vec![load::parse_header("X-Route:  a b: c ").unwrap()];
    assert_all_whole(&load::run(config).await, 10, 24);
}
