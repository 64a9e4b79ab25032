//! Resumable streams across replicas (`--resumable --redis-url`): proxies sharing one real
//! `redis-server` (started by each test on a free loopback port). A stream started on proxy A
//! resumes on proxy B with exactly the rest; a proxy killed mid-stream (a process of its own,
//! `SIGKILL`ed) leaves its readers on B the `stream_producer_lost` error event; every key the
//! streams leave in Redis has a TTL. A proxy asked to stop (`SIGTERM`) finishes its resumable
//! streams, whether their clients are there or not, before it exits. A background response (the Responses API's own way)
//! started on A resumes on B with `starting_after`.
//!
//! Without `redis-server` installed, the tests print why they are skipped (and fail under CI,
//! which installs it: `.ci/run`).

mod resume_support;
use resume_support::*;

use llm_proxy as app;
use tower_llm_stream_test_support::client::{chat, client};
use tower_llm_stream_test_support::process::{ChildProcess, start_listening};
use tower_llm_stream_test_support::proxy::start_proxy;
use tower_llm_stream_test_support::raw::Upstream;
use tower_llm_stream_test_support::redis::{RedisServer, Reply, keys};

use app::resume::{ResumeConfig, Store};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use tower_llm_stream::resume::RedisStore;

/// A proxy in this process with `--resumable --redis-url` (its own connections to `redis`),
/// provider `s` at `upstream` when given: its address.
async fn replica(redis: &RedisServer, upstream: Option<&Upstream>) -> SocketAddr {
    let providers = providers_at(upstream);
    let store = RedisStore::connect(&redis.url()).await.expect("connects");
    let config = app::Config {
        providers,
        resume: Some(ResumeConfig {
            store: Store::Redis(store),
            ttl: Duration::from_secs(60),
        }),
        ..app::Config::default()
    };
    start_proxy(config).await
}

/// A proxy process, killed if the test fails.
struct ProxyProcess(ChildProcess);

impl ProxyProcess {
    /// Starts `llm-proxy --resumable --redis-url` on a port it picks: the process and its
    /// address, read from its "listening on" log line (the rest of its log is copied to the
    /// test's output).
    fn start(redis: &RedisServer) -> (ProxyProcess, SocketAddr) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_llm-proxy"));
        command
            .args(["--listen", "127.0.0.1:0", "--threads", "1", "--resumable"])
            .args(["--redis-url", &redis.url()])
            .env("RUST_LOG", "warn,llm_proxy::cli=info");
        let (process, addr) = start_listening(command, "llm-proxy", BOUND);
        (ProxyProcess(process), addr)
    }

    /// `SIGTERM`: the graceful shutdown (no new connections; open requests and resumable
    /// streams get 10 s).
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `within` for the process to exit: its exit status.
    fn exited_within(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.0.try_wait().expect("its status") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `SIGKILL`: the process ends at once, heartbeats and all; reaped within 10 s.
    fn kill(&mut self) {
        self.0.0.kill().expect("the proxy is killed");
        let deadline = Instant::now() + BOUND;
        while self.0.0.try_wait().expect("its status").is_none() {
            assert!(Instant::now() < deadline, "the killed proxy did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Every key the streams left in the test's Redis has a TTL (`PTTL` above 0): none stays
/// forever. There is at least one.
fn every_key_has_a_ttl(redis: &RedisServer) {
    let keys = keys(redis, "tls:*");
    assert!(!keys.is_empty(), "the streams are in Redis");
    for key in &keys {
        let Reply::Int(pttl) = redis.cmd(&["PTTL", key]) else {
            panic!("PTTL {key} answered no integer")
        };
        assert!(pttl > 0, "{key} has no TTL (PTTL {pttl})");
    }
}

#[tokio::test]
async fn a_stream_started_on_one_proxy_resumes_on_another_with_exactly_the_rest() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let upstream = paced(Duration::from_millis(30)).await;
    let a = replica(&redis, Some(&upstream)).await;
    let b = replica(&redis, Some(&upstream)).await;
    let request = chat("s/m", true);

    // The uninterrupted stream of the same request.
    let whole = rest(
        open(a, "/v1/chat/completions", request.clone(), false)
            .await
            .into_body(),
    )
    .await;
    assert!(whole.ends_with("data: [DONE]\n\n"), "{whole}");
    assert_eq!(events(&whole).len(), WORDS + 3, "{whole}");

    for k in [1, 5, WORDS] {
        let (id, first) = leave_after(a, "/v1/chat/completions", request.clone(), k).await;
        let last = ids(&first).len().to_string();

        let resumed = resume(b, &id, &[("last-event-id", &last)]).await;
        assert_eq!(resumed.status(), StatusCode::OK);
        assert_eq!(stream_id(resumed.headers()), id);
        let second = rest(resumed.into_body()).await;
        assert_exactly_the_rest(&first, &second, &whole);
    }
    every_key_has_a_ttl(&redis);
}

#[tokio::test]
async fn a_proxy_killed_mid_stream_leaves_its_readers_the_producer_lost_event() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (mut a, a_addr) = ProxyProcess::start(&redis);
    let b = replica(&redis, None).await;

    // demo/slow: a word every 250 ms, some 12 s in all: still running when A is killed.
    let (id, first) = leave_after(a_addr, "/v1/chat/completions", chat("demo/slow", true), 3).await;
    let had = ids(&first).len();

    a.kill();
    let killed = Instant::now();

    // The lease (10 s) runs out, then a read's wait (5 s) at most.
    let resumed = resume(b, &id, &[("last-event-id", &had.to_string())]).await;
    assert_eq!(resumed.status(), StatusCode::OK);
    let second = rest_within(resumed.into_body(), Duration::from_secs(30)).await;
    let last = events(&second).last().copied().unwrap_or_default();
    assert!(
        last.contains("stream_producer_lost"),
        "the last event says the producer was lost: {second}"
    );
    assert!(!second.contains("[DONE]"), "{second}");
    eprintln!(
        "producer lost reported {:?} after the kill",
        killed.elapsed()
    );
    // What B gave are the events after the client's last, numbered on.
    let numbers: Vec<u64> = ids(&second).into_iter().flatten().collect();
    let expected: Vec<u64> = (had as u64 + 1..).take(numbers.len()).collect();
    assert_eq!(numbers, expected, "{second}");
    every_key_has_a_ttl(&redis);
}

/// The `data:` JSON of each event of a Responses stream.
fn responses_events(text: &str) -> Vec<serde_json::Value> {
    events(text)
        .iter()
        .map(|e| {
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_background_response_started_on_one_proxy_resumes_on_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = replica(&redis, None).await;
    let b = replica(&redis, None).await;
    let body = serde_json::json!({"model": "demo/echo", "input": "Hi", "stream": true,
        "background": true, "max_output_tokens": 10})
    .to_string();
    let response = open(a, "/v1/responses", body, false).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = read_events(&mut body, 5).await;
    drop(body);
    let had = responses_events(&first);
    let id = had[0]["response"]["id"].as_str().unwrap().to_owned();
    let last = had.last().unwrap()["sequence_number"].as_u64().unwrap();

    let request = Request::get(format!(
        "http://{b}/v1/responses/{id}?stream=true&starting_after={last}"
    ))
    .body(Full::new(Bytes::new()))
    .unwrap();
    let resumed = tokio::time::timeout(BOUND, client().request(request))
        .await
        .expect("an answer in time")
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::OK);
    let second = rest(resumed.into_body()).await;
    let both = responses_events(&format!("{first}{second}"));
    let numbers: Vec<u64> = both
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..both.len() as u64).collect::<Vec<_>>());
    let text: String = both
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, app::demo::reply("Hi")[..10].concat());
    assert_eq!(both.last().unwrap()["type"], "response.incomplete");

    // The response as it ended, from B.
    let request = Request::get(format!("http://{b}/v1/responses/{id}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = client().request(request).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: serde_json::Value = serde_json::from_str(&rest(answer.into_body()).await).unwrap();
    assert_eq!(answer["id"], id.as_str());
    assert_eq!(answer["status"], "incomplete");
    assert_eq!(answer["output"][0]["content"][0]["text"], text.as_str());
    every_key_has_a_ttl(&redis);
}

#[tokio::test]
async fn a_draining_proxy_finishes_its_resumable_streams_before_it_exits() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (mut a, a_addr) = ProxyProcess::start(&redis);
    let b = replica(&redis, None).await;
    // demo/echo: 40 words 30 ms apart, some 1.2 s.
    let request = serde_json::json!({"model": "demo/echo", "stream": true, "max_tokens": 40,
        "messages": [{"role": "user", "content": "Hi"}]})
    .to_string();
    let (id, first) = leave_after(a_addr, "/v1/chat/completions", request, 2).await;
    let had = ids(&first).len();
    // The client is gone and A is asked to stop: no connection is open, the stream runs on.
    a.terminate();

    let resumed = resume(b, &id, &[("last-event-id", &had.to_string())]).await;
    assert_eq!(resumed.status(), StatusCode::OK);
    let second = rest(resumed.into_body()).await;
    assert!(
        second.ends_with("data: [DONE]\n\n"),
        "the stream ran to its end: {second}"
    );
    assert!(!second.contains("stream_producer_lost"), "{second}");
    let text: String = events(&format!("{first}{second}"))
        .iter()
        .filter_map(|e| e.strip_prefix("id: ").and_then(|e| e.split_once("data: ")))
        .filter_map(|(_, data)| serde_json::from_str::<serde_json::Value>(data).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, app::demo::reply("Hi")[..40].concat());
    // Then A exits, cleanly.
    let status = a.exited_within(BOUND);
    assert!(status.success(), "{status}");
    every_key_has_a_ttl(&redis);
}
