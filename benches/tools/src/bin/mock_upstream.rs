//! A mock OpenAI chat upstream for load tests (see `mock.rs`).
//!
//! ```sh
//! cargo run --release -p llm-bench-tools --bin mock_upstream -- --listen 127.0.0.1:18100 --events 20 --interval-ms 0
//! ```

use llm_bench_tools::mock;

use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:18100".to_owned();
    let mut config = mock::MockConfig::default();
    let mut threads = 1;
    let millis = |v: Option<String>, flag: &str| -> Duration {
        let v = v.unwrap_or_else(|| die(&format!("{flag} needs a value")));
        Duration::from_secs_f64(
            v.parse::<f64>()
                .unwrap_or_else(|_| die(&format!("{flag} {v:?}")))
                / 1000.0,
        )
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .unwrap_or_else(|| die("--listen needs an address"))
            }
            "--events" => {
                config.events = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| die("--events needs a number"))
            }
            "--interval-ms" => config.interval = millis(args.next(), "--interval-ms"),
            "--first-delay-ms" => config.first_delay = millis(args.next(), "--first-delay-ms"),
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| die("--threads needs a number"))
            }
            other => die(&format!(
                "unknown argument {other:?}\nusage: mock_upstream [--listen ADDR] [--events K] [--interval-ms MS] [--first-delay-ms MS] [--threads N]"
            )),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .unwrap_or_else(|e| die(&format!("cannot listen on {listen}: {e}")));
        eprintln!("mock upstream on http://{listen}: {config:?}");
        mock::serve(listener, config).await;
    });
}

fn die(message: &str) -> ! {
    eprintln!("mock_upstream: {message}");
    std::process::exit(2)
}
