//! A load generator for streaming endpoints: N concurrent streaming requests, each read to its
//! end and checked for lost events; reports requests/s, events/s, time to first event and end
//! to end latency percentiles, errors.
//!
//! ```sh
//! cargo run --release -p llm-bench-tools --bin loadgen -- --url http://127.0.0.1:8080/v1/chat/completions \
//!     --model mock/m --concurrency 1000 --requests 20000 --expect-content 20
//! ```

use llm_bench_tools::load;

use std::time::Duration;

const USAGE: &str =
    "usage: loadgen --url URL [--model M] [--concurrency N] [--requests R] [--expect-content K]
               [--hold-ms MS] [--ramp-ms MS] [--api-key KEY] [--header 'NAME: VALUE']... [--threads T]
               [--json]";

fn die(message: &str) -> ! {
    eprintln!("loadgen: {message}\n{USAGE}");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut url, mut model, mut concurrency, mut requests) =
        (None, "mock/m".to_owned(), 100, 1000);
    let (mut expect, mut hold, mut key, mut threads, mut json) = (None, None, None, 1, false);
    let mut ramp = Duration::ZERO;
    let mut headers = Vec::new();
    let value = |flag: &str, args: &mut dyn Iterator<Item = String>| {
        args.next()
            .unwrap_or_else(|| die(&format!("{flag} needs a value")))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => url = Some(value("--url", &mut args)),
            "--model" => model = value("--model", &mut args),
            "--concurrency" => {
                concurrency = value("--concurrency", &mut args)
                    .parse()
                    .unwrap_or_else(|_| die("--concurrency"))
            }
            "--requests" => {
                requests = value("--requests", &mut args)
                    .parse()
                    .unwrap_or_else(|_| die("--requests"))
            }
            "--expect-content" => {
                expect = Some(
                    value("--expect-content", &mut args)
                        .parse()
                        .unwrap_or_else(|_| die("--expect-content")),
                )
            }
            "--hold-ms" => {
                hold = Some(Duration::from_millis(
                    value("--hold-ms", &mut args)
                        .parse()
                        .unwrap_or_else(|_| die("--hold-ms")),
                ))
            }
            "--ramp-ms" => {
                ramp = Duration::from_millis(
                    value("--ramp-ms", &mut args)
                        .parse()
                        .unwrap_or_else(|_| die("--ramp-ms")),
                )
            }
            "--api-key" => key = Some(value("--api-key", &mut args)),
            "--header" => headers.push(
                load::parse_header(&value("--header", &mut args))
                    .unwrap_or_else(|e| die(&format!("--header: {e}"))),
            ),
            "--threads" => {
                threads = value("--threads", &mut args)
                    .parse()
                    .unwrap_or_else(|_| die("--threads"))
            }
            "--json" => json = true,
            other => die(&format!("unknown argument {other:?}")),
        }
    }
    let url: http::Uri = url
        .unwrap_or_else(|| die("--url is required"))
        .parse()
        .unwrap_or_else(|e| die(&format!("--url: {e}")));
    let body = serde_json::json!({
        "model": model, "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Hello"}],
    });
    let config = load::LoadConfig {
        url,
        body: body.to_string().into(),
        authorization: key.map(|k| format!("Bearer {k}")),
        headers,
        concurrency,
        requests,
        expect_content: expect,
        hold,
        ramp,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a runtime");
    let report = runtime.block_on(load::run(config));
    if json {
        println!("{}", report.json());
    } else {
        println!("{}", report.human());
    }
    if report.ok != report.requests {
        std::process::exit(1);
    }
}
