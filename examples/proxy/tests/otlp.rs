//! The OTLP export (feature `otlp`): the real `llm-proxy` binary, started with
//! `--otlp-endpoint`, sends the `llm_stream` span of a demo stream to an in-process OTLP/HTTP
//! receiver on 127.0.0.1 when it is stopped with SIGTERM, its GenAI fields as attributes.
//!
//! `cargo test -p llm-proxy --features otlp --test otlp`
// Unix only: the proxy is stopped with SIGTERM, as a service manager would.
#![cfg(all(feature = "otlp", unix))]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower_llm_stream_test_support::process::{ChildProcess, start_listening};

/// What the receiver got: one decoded export request per `POST /v1/traces`, or what was wrong
/// with a request.
type Received = Result<ExportTraceServiceRequest, String>;

/// An OTLP/HTTP receiver (protobuf): answers each `POST /v1/traces` with an empty
/// `ExportTraceServiceResponse` and hands the decoded request to the test.
async fn receiver() -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let received = read_export(request).await;
                        let status = if received.is_ok() {
                            StatusCode::OK
                        } else {
                            StatusCode::BAD_REQUEST
                        };
                        let _ = tx.send(received);
                        Response::builder()
                            .status(status)
                            .header("content-type", "application/x-protobuf")
                            .body(Full::new(Bytes::new()))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    (addr, rx)
}

async fn read_export(request: Request<Incoming>) -> Received {
    let (parts, body) = request.into_parts();
    if parts.method != http::Method::POST || parts.uri.path() != "/v1/traces" {
        return Err(format!(
            "{} {}: not an OTLP trace export",
            parts.method, parts.uri
        ));
    }
    let content_type = parts.headers.get("content-type");
    if content_type.is_none_or(|t| t != "application/x-protobuf") {
        return Err(format!("content-type {content_type:?}, not protobuf"));
    }
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    ExportTraceServiceRequest::decode(body).map_err(|e| format!("not an export request: {e}"))
}

/// The proxy's process, killed if the test fails before it is stopped.
struct Proxy(ChildProcess);

impl Proxy {
    /// Starts `llm-proxy` on a port it picks and returns it with its address, read from its
    /// "listening on" log line; the rest of its log is copied to the test's output.
    fn start(otlp: SocketAddr) -> (Proxy, SocketAddr) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_llm-proxy"));
        command
            .args(["--listen", "127.0.0.1:0", "--threads", "1"])
            .args(["--otlp-endpoint", &format!("http://{otlp}")])
            // The log at warn but for the address line: the stream span is not logged, yet it
            // is exported (the log's filter is the log's alone).
            .env("RUST_LOG", "warn,llm_proxy::cli=info")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let (process, addr) = start_listening(command, "llm-proxy", Duration::from_secs(10));
        (Proxy(process), addr)
    }

    /// SIGTERM, then the exit (a graceful stop: the tracer provider is shut down, the spans
    /// still buffered are sent), within 10 s.
    fn stop(mut self) {
        let pid = libc::pid_t::try_from(self.0.0.id()).expect("a process id");
        // SAFETY: kill(2) reads no memory of ours; the pid is our child's, not yet reaped.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM: {}", std::io::Error::last_os_error());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.0.try_wait().unwrap() {
                assert!(status.success(), "the proxy exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not exit within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn string<'a>(span: &'a Span, key: &str) -> &'a str {
    match attribute(&span.attributes, key) {
        Some(Value::StringValue(s)) => s,
        other => panic!("{key}: {other:?}, not a string; span: {span:#?}"),
    }
}

fn int(span: &Span, key: &str) -> i64 {
    match attribute(&span.attributes, key) {
        Some(Value::IntValue(n)) => *n,
        other => panic!("{key}: {other:?}, not an integer; span: {span:#?}"),
    }
}

#[tokio::test]
async fn the_stream_span_reaches_the_collector_with_its_genai_attributes() {
    let (otlp, mut exports) = receiver().await;
    let (proxy, addr) = Proxy::start(otlp);

    // One streamed chat completion through the demo provider.
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let request = Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"model":"demo/instant","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
        )))
        .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), async {
        let response = client.request(request).await.expect("the proxy answers");
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap().to_bytes()
    })
    .await
    .expect("the stream ends within 10 s");
    let body = String::from_utf8_lossy(&body);
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    drop(client);

    // The batch processor exports every 5 s: stopping the proxy flushes it at once.
    tokio::task::spawn_blocking(move || proxy.stop())
        .await
        .unwrap();

    let mut spans = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let span = loop {
        if let Some(span) = spans.iter().find(|s: &&Span| s.name == "llm_stream") {
            break (*span).clone();
        }
        let export = tokio::time::timeout_at(deadline, exports.recv())
            .await
            .unwrap_or_else(|_| panic!("no llm_stream span within 5 s; spans: {spans:#?}"))
            .expect("the receiver runs")
            .expect("a well-formed OTLP/HTTP protobuf export");
        for resource_spans in export.resource_spans {
            let resource = resource_spans.resource.unwrap_or_default();
            assert!(
                matches!(
                    attribute(&resource.attributes, "service.name"),
                    Some(Value::StringValue(name)) if name == "llm-proxy"
                ),
                "{resource:#?}"
            );
            for scope_spans in resource_spans.scope_spans {
                spans.extend(scope_spans.spans);
            }
        }
    };

    // The route's labels: the provider and the model as the client named it after the slash.
    assert_eq!(string(&span, "gen_ai.provider.name"), "demo");
    assert_eq!(string(&span, "gen_ai.request.model"), "instant");
    // Recorded when the stream ended, after the span was made.
    assert_eq!(string(&span, "outcome"), "completed");
    assert_eq!(int(&span, "http.response.status_code"), 200);
    assert!(
        string(&span, "gen_ai.response.finish_reasons").contains("stop"),
        "{span:#?}"
    );
    // The demo reports usage: the prompt's words in, the reply's words out.
    assert!(int(&span, "gen_ai.usage.input_tokens") > 0, "{span:#?}");
    assert!(int(&span, "gen_ai.usage.output_tokens") > 0, "{span:#?}");
    assert!(int(&span, "events") > 1, "{span:#?}");
    assert!(int(&span, "bytes") > 0, "{span:#?}");
    assert!(
        attribute(&span.attributes, "error.code").is_none(),
        "{span:#?}"
    );
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    // Its "stream ended" event comes along.
    assert!(
        span.events.iter().any(|e| e.name == "stream ended"),
        "{span:#?}"
    );
    // Only the stream spans are exported, not the server's own.
    assert!(
        spans.iter().all(|s| s.name == "llm_stream"),
        "{:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
}
