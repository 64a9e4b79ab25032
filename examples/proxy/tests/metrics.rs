//! `GET /metrics` end to end: the proxy on a real loopback socket, known streams through the
//! demo provider, then a scrape whose exposition text is parsed and checked value by value.

use llm_proxy as app;
use tower_llm_stream_test_support::client::{client, data, send};
use tower_llm_stream_test_support::proxy::start_proxy;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tower_llm_stream::provider::{Provider, ProviderKind};

/// The proxy with its default configuration (the demo provider only) and `api_key`.
async fn start(api_key: Option<&str>) -> SocketAddr {
    let config = app::Config {
        api_key: api_key.map(str::to_owned),
        ..app::Config::default()
    };
    start_proxy(config).await
}

/// A streamed chat request that asks for usage.
async fn stream_chat(addr: SocketAddr, model: &str, prompt: &str) -> (StatusCode, String) {
    let body = json!({"model": model, "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": prompt}]});
    let (head, body) = send(
        addr,
        Request::post("/v1/chat/completions").header("content-type", "application/json"),
        body.to_string(),
    )
    .await;
    (head.status, body)
}

/// The `data:` payloads of a standard stream, `[DONE]` left out.
fn data_events(body: &str) -> Vec<Value> {
    data(body)
        .into_iter()
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

/// The usage of a stream's last chunk: (prompt tokens, completion tokens).
fn last_usage(body: &str) -> (u64, u64) {
    let events = data_events(body);
    let last = events.last().expect("a chunk");
    let usage = &last["usage"];
    assert!(usage.is_object(), "the last chunk has no usage: {body}");
    (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    )
}

/// One sample line of the exposition text.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of an exposition text: every line that is not a `#` comment, parsed as
/// `name{label="value",...} value [timestamp]` with the format's escapes in label values.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let name = line[..name_end].to_owned();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line:?}"
        );
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices();
            loop {
                let key: String = chars
                    .by_ref()
                    .take_while(|&(_, c)| c != '=')
                    .map(|(_, c)| c)
                    .collect();
                assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line:?}");
                let mut value = String::new();
                loop {
                    match chars.next().unwrap_or_else(|| panic!("unclosed: {line:?}")) {
                        (_, '"') => break,
                        (_, '\\') => match chars.next().map(|(_, c)| c) {
                            Some('n') => value.push('\n'),
                            Some(c @ ('\\' | '"')) => value.push(c),
                            other => panic!("bad escape {other:?} in {line:?}"),
                        },
                        (_, c) => value.push(c),
                    }
                }
                assert!(
                    labels.insert(key.clone(), value).is_none(),
                    "label {key} twice: {line:?}"
                );
                match chars.next() {
                    Some((_, ',')) => continue,
                    Some((at, '}')) => {
                        rest = &inner[at + 1..];
                        break;
                    }
                    other => panic!("unexpected {other:?} in {line:?}"),
                }
            }
        }
        let mut fields = rest.split_whitespace();
        let value = fields
            .next()
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line:?}")),
        };
        assert!(fields.nth(1).is_none(), "trailing fields: {line:?}");
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// The scrape, parsed.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    /// The samples named `name`.
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the sample named `name` with exactly `labels`, if there is one.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut found = self.named(name).filter(|s| s.labels == labels);
        let value = found.next().map(|s| s.value);
        assert!(found.next().is_none(), "{name} {labels:?} twice");
        value
    }

    /// Like [`get`](Self::get), but the sample must be there.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{}", self.text))
    }
}

async fn scrape(addr: SocketAddr, key: Option<&str>) -> Scrape {
    let mut request = Request::get("/metrics");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let (head, text) = send(addr, request, Bytes::new()).await;
    assert_eq!(head.status, StatusCode::OK, "{text}");
    assert_eq!(head.headers["content-type"], app::metrics::CONTENT_TYPE);
    assert!(text.ends_with("# EOF\n"), "{text}");
    let samples = parse(&text);
    Scrape { text, samples }
}

/// Scrapes until no stream is open (a stream's summary is recorded as its body ends, which
/// the client can see a moment before the server has let go of it).
async fn scrape_when_idle(addr: SocketAddr, key: Option<&str>) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let scrape = scrape(addr, key).await;
        if scrape.value("llm_streams_active", &[]) == 0.0 {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "streams still open:\n{}",
            scrape.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn model(name: &str) -> [(&'static str, &str); 2] {
    [
        ("gen_ai_provider_name", "demo"),
        ("gen_ai_request_model", name),
    ]
}

fn with<'a>(model: [(&'a str, &'a str); 2], extra: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
    let mut labels = model.to_vec();
    labels.push(extra);
    labels
}

#[tokio::test]
async fn a_scrape_counts_the_streams_that_ran() {
    let addr = start(None).await;
    // Before any stream: the gauge alone (a family without series is not written).
    let empty = scrape(addr, None).await;
    assert_eq!(
        empty.samples,
        [Sample {
            name: "llm_streams_active".into(),
            labels: BTreeMap::new(),
            value: 0.0
        }]
    );

    // Three streams that complete, with usage; the demo counts a prompt's words as its input
    // tokens and its reply's words as its output tokens.
    let prompts = [
        "hello",
        "what is the time",
        "tell me a story about a lighthouse",
    ];
    let (mut input_seen, mut output_seen) = (0, 0);
    for prompt in prompts {
        let (status, body) = stream_chat(addr, "demo/instant", prompt).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (input, output) = last_usage(&body);
        assert_eq!(input, prompt.split_whitespace().count() as u64);
        assert_eq!(output, app::demo::reply(prompt).len() as u64);
        input_seen += input;
        output_seen += output;
    }
    // One that fails midway: an error event, no usage.
    let (status, body) = stream_chat(addr, "demo/broken", "hello").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let last = data_events(&body).pop().unwrap();
    assert_eq!(last["error"]["code"], "upstream_body_error", "{body}");
    // Refused before the layers: an unknown model of a known provider, an unknown provider.
    for refused in ["demo/no-such-model", "nope/no-such-model"] {
        let (status, body) = stream_chat(addr, refused, "hello").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }

    let scrape = scrape_when_idle(addr, None).await;
    let (instant, broken) = (model("instant"), model("broken"));

    // Each family that has series is described with its type.
    for (family, kind) in [
        ("gen_ai_server_time_to_first_token_seconds", "histogram"),
        ("gen_ai_server_request_duration_seconds", "histogram"),
        ("gen_ai_usage_input_tokens", "counter"),
        ("gen_ai_usage_output_tokens", "counter"),
        ("llm_stream_outcomes", "counter"),
        ("llm_streams_active", "gauge"),
    ] {
        let described = format!("# TYPE {family} {kind}");
        assert!(
            scrape.text.lines().any(|line| line == described),
            "{family}: {}",
            scrape.text
        );
    }

    // Outcomes: exactly these two series.
    let outcomes: Vec<_> = scrape.named("llm_stream_outcomes_total").collect();
    assert_eq!(outcomes.len(), 2, "{}", scrape.text);
    assert_eq!(
        scrape.value(
            "llm_stream_outcomes_total",
            &with(instant, ("outcome", "completed"))
        ),
        3.0
    );
    assert_eq!(
        scrape.value(
            "llm_stream_outcomes_total",
            &with(broken, ("outcome", "error"))
        ),
        1.0
    );

    // Tokens: what the clients saw in their last chunks; the broken stream reported none.
    assert_eq!(
        scrape.value("gen_ai_usage_input_tokens_total", &instant),
        input_seen as f64
    );
    assert_eq!(
        scrape.value("gen_ai_usage_output_tokens_total", &instant),
        output_seen as f64
    );
    assert_eq!(scrape.named("gen_ai_usage_input_tokens_total").count(), 1);
    assert_eq!(scrape.named("gen_ai_usage_output_tokens_total").count(), 1);

    // Histograms: one observation per stream (each sent a first event), and the `+Inf`
    // bucket holds them all.
    for histogram in [
        "gen_ai_server_request_duration_seconds",
        "gen_ai_server_time_to_first_token_seconds",
    ] {
        for (labels, streams) in [(instant, 3.0), (broken, 1.0)] {
            let count = scrape.value(&format!("{histogram}_count"), &labels);
            assert_eq!(count, streams, "{histogram} {labels:?}");
            let all = scrape.value(
                &format!("{histogram}_bucket"),
                &with(labels, ("le", "+Inf")),
            );
            assert_eq!(all, streams, "{histogram} {labels:?}");
            let sum = scrape.value(&format!("{histogram}_sum"), &labels);
            assert!(
                sum > 0.0 && sum.is_finite(),
                "{histogram} {labels:?}: {sum}"
            );
        }
        assert_eq!(scrape.named(&format!("{histogram}_count")).count(), 2);
    }

    assert_eq!(scrape.value("llm_streams_active", &[]), 0.0);
    assert_eq!(scrape.named("llm_fallbacks_total").count(), 0);
    // The refused requests made no series.
    for sample in &scrape.samples {
        for value in sample.labels.values() {
            assert!(
                !value.contains("no-such-model") && value != "nope",
                "a refused request made a series: {sample:?}"
            );
        }
    }
    // Series exist only for the models that streamed.
    for sample in scrape.named("gen_ai_server_request_duration_seconds_count") {
        let model = &sample.labels["gen_ai_request_model"];
        assert!(model == "instant" || model == "broken", "{sample:?}");
    }
}

#[tokio::test]
async fn an_open_stream_is_active_until_the_client_goes() {
    let addr = start(None).await;
    let body = json!({"model": "demo/slow", "stream": true,
                      "messages": [{"role": "user", "content": "hello"}]});
    let request = Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());

    let open = scrape(addr, None).await;
    assert_eq!(open.value("llm_streams_active", &[]), 1.0, "{}", open.text);
    assert_eq!(
        open.named("llm_stream_outcomes_total").count(),
        0,
        "{}",
        open.text
    );

    // The client goes: the stream ends as cancelled.
    drop(body);
    let ended = scrape_when_idle(addr, None).await;
    assert_eq!(
        ended.value(
            "llm_stream_outcomes_total",
            &with(model("slow"), ("outcome", "client_cancelled"))
        ),
        1.0,
        "{}",
        ended.text
    );
}

#[tokio::test]
async fn metrics_follow_the_proxy_key() {
    let addr = start(Some("proxy-key")).await;
    let (head, body) = send(addr, Request::get("/metrics"), Bytes::new()).await;
    assert_eq!(head.status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!body.contains("llm_streams_active"), "{body}");
    let (head, _) = send(
        addr,
        Request::get("/metrics").header("authorization", "Bearer wrong-key"),
        Bytes::new(),
    )
    .await;
    assert_eq!(head.status, StatusCode::UNAUTHORIZED);
    let scrape = scrape(addr, Some("proxy-key")).await;
    assert_eq!(scrape.value("llm_streams_active", &[]), 0.0);
}

#[tokio::test]
async fn metrics_answer_get_and_head_only() {
    let addr = start(None).await;
    let (head, body) = send(
        addr,
        Request::builder().method(Method::HEAD).uri("/metrics"),
        Bytes::new(),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers["content-type"], app::metrics::CONTENT_TYPE);
    assert!(body.is_empty(), "{body}");
    let (head, body) = send(addr, Request::post("/metrics"), Bytes::new()).await;
    assert_eq!(head.status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(head.headers["allow"], "GET");
}

#[test]
fn the_parser_reads_labels_escapes_and_infinities() {
    let text = "# TYPE x counter\nx_total{a=\"q\\\"uo\\\\te\",b=\"line\\nbreak\"} 3\nh_bucket{le=\"+Inf\"} 2\ng -1.5 1700000000\n# EOF\n";
    let samples = parse(text);
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[0].name, "x_total");
    assert_eq!(samples[0].labels["a"], "q\"uo\\te");
    assert_eq!(samples[0].labels["b"], "line\nbreak");
    assert_eq!(samples[0].value, 3.0);
    assert_eq!(samples[1].labels["le"], "+Inf");
    assert_eq!((samples[2].name.as_str(), samples[2].value), ("g", -1.5));
}

#[tokio::test]
async fn a_fallback_is_counted_for_the_target_that_failed() {
    // An upstream that refuses connections.
    let down = tower_llm_stream_test_support::raw::refusing().await.addr();
    let mut config = app::Config::default();
    config.providers.insert(
        Provider::new(
            "down",
            ProviderKind::OpenAiCompatible,
            &format!("http://{down}/v1"),
        )
        .unwrap(),
    );
    config.fallbacks.insert(
        "down/some-model".to_owned(),
        vec!["demo/instant".to_owned()],
    );
    let addr = start_proxy(config).await;

    let (status, body) = stream_chat(addr, "down/some-model", "hello").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (input, output) = last_usage(&body);

    let scrape = scrape_when_idle(addr, None).await;
    let failed = [
        ("gen_ai_provider_name", "down"),
        ("gen_ai_request_model", "some-model"),
    ];
    assert_eq!(
        scrape.value("llm_fallbacks_total", &failed),
        1.0,
        "{}",
        scrape.text
    );
    assert_eq!(scrape.named("llm_fallbacks_total").count(), 1);
    // The stream itself is one stream, recorded once.
    let outcomes: Vec<_> = scrape.named("llm_stream_outcomes_total").collect();
    assert_eq!(outcomes.len(), 1, "{}", scrape.text);
    assert_eq!(outcomes[0].value, 1.0);
    assert_eq!(outcomes[0].labels["outcome"], "completed");
    // Recorded for the target that served, not the one that failed.
    let served = [
        outcomes[0].labels["gen_ai_provider_name"].as_str(),
        outcomes[0].labels["gen_ai_request_model"].as_str(),
    ];
    assert_eq!(served, ["demo", "instant"]);
    let usage = [
        ("gen_ai_provider_name", served[0]),
        ("gen_ai_request_model", served[1]),
    ];
    assert_eq!(
        scrape.value("gen_ai_usage_input_tokens_total", &usage),
        input as f64
    );
    assert_eq!(
        scrape.value("gen_ai_usage_output_tokens_total", &usage),
        output as f64
    );
}
