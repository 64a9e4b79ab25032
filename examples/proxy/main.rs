//! The example reverse proxy: OpenAI-compatible endpoints in front of many providers, every
//! stream standardized by the crate's layers.
//!
//! ```sh
//! cargo run --release --example proxy            # http://127.0.0.1:8080, the demo provider
//! curl -N http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"demo/echo","stream":true,"messages":[{"role":"user","content":"Hi"}]}'
//! ANTHROPIC_API_KEY=sk-ant-… cargo run --release --example proxy -- --provider vllm=http://127.0.0.1:8000
//! ```
//!
//! Providers come from the environment (`P_API_KEY` / `P_BASE_URL` / `P_MODELS` for P in
//! OPENAI, ANTHROPIC, GEMINI, COHERE, MISTRAL, GROQ, DEEPSEEK, OPENROUTER, OLLAMA) and from
//! `--provider NAME=BASE_URL` for any OpenAI-compatible server (its key, if it needs one, in
//! `NAME_API_KEY`, its models in `NAME_MODELS`). Models are named `provider/model`.

mod app;
mod listen;
mod log_format;
mod log_writer;

use app::{Config, Proxy};
use std::time::Duration;
use tower_llm_stream::provider::{Provider, ProviderKind, Providers};

const USAGE: &str = "\
usage: proxy [--listen ADDR] [--timeout SECS] [--max-timeout SECS] [--provider NAME=BASE_URL]...
             [--max-body-bytes N] [--max-upload-bytes N] [--threads N] [--upstream-http2]
             [--without-layers]

  --listen ADDR             where to listen (default 127.0.0.1:8080)
  --timeout SECS            wait for the response head and between events (default 30)
  --max-timeout SECS        the most a client may set with x-request-timeout (default 600)
  --provider NAME=BASE_URL  an OpenAI-compatible upstream (vLLM, llama.cpp, ...); key from
                            NAME_API_KEY, models from NAME_MODELS (comma-separated)
  --max-body-bytes N        largest JSON request body (default 4194304)
  --max-upload-bytes N      largest transcription upload (default 26214400)
  --threads N               worker threads, each a single-threaded runtime with its own
                            listening socket and upstream pool (default: the CPU count)
  --upstream-http2          HTTP/2 to upstreams: by ALPN over TLS, with prior knowledge (h2c)
                            over plain HTTP; up to 100 streams share a connection (far less
                            memory per open stream, a wakeup per chunk more)
  --without-layers          benchmark floor, not for production: the same routing, request
                            rewriting and upstream pool, the response relayed as the upstream
                            sent it (no reframing, usage, timeout, error events, stream log)

Environment: P_API_KEY, P_BASE_URL, P_MODELS for P in OPENAI ANTHROPIC GEMINI COHERE MISTRAL
GROQ DEEPSEEK OPENROUTER OLLAMA; PROXY_API_KEY makes clients authenticate; RUST_LOG.
The demo provider (models demo/echo, demo/slow, demo/instant, demo/broken) needs nothing.";

fn seconds(flag: &str, value: Option<String>) -> Result<Duration, String> {
    let value = value.ok_or(format!("{flag} needs a value"))?;
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or(format!("{flag} {value:?}: give seconds, more than 0"))
}

fn number(flag: &str, value: Option<String>) -> Result<u64, String> {
    let value = value.ok_or(format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag} {value:?}: give a number of bytes"))
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<(String, usize, Config), String> {
    let mut args = args.peekable();
    let mut listen = "127.0.0.1:8080".to_owned();
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut config = Config {
        providers: Providers::from_env().map_err(|e| e.to_string())?,
        api_key: std::env::var("PROXY_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        ..Config::default()
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            "--timeout" => config.timeout = seconds("--timeout", args.next())?,
            "--max-timeout" => config.max_timeout = seconds("--max-timeout", args.next())?,
            "--max-body-bytes" => {
                config.max_body_bytes = number("--max-body-bytes", args.next())? as usize
            }
            "--max-upload-bytes" => {
                config.max_upload_bytes = number("--max-upload-bytes", args.next())?
            }
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--threads needs a number above 0")?
            }
            "--provider" => {
                let spec = args.next().ok_or("--provider needs NAME=BASE_URL")?;
                let (name, url) = spec
                    .split_once('=')
                    .ok_or(format!("--provider {spec:?}: write NAME=BASE_URL"))?;
                let env = name.to_ascii_uppercase().replace('-', "_");
                let mut provider = Provider::new(name, ProviderKind::OpenAiCompatible, url)
                    .map_err(|e| e.to_string())?;
                if let Ok(key) = std::env::var(format!("{env}_API_KEY")) {
                    provider = provider.api_key(key);
                }
                if let Ok(models) = std::env::var(format!("{env}_MODELS")) {
                    provider =
                        provider.models(models.split(',').map(str::trim).filter(|m| !m.is_empty()));
                }
                config.providers.insert(provider);
            }
            "--upstream-http2" => config.upstream_http2 = true,
            "--without-layers" => config.without_layers = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok((listen, threads, config))
}

async fn ctrl_c_or_term() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(log_writer::BatchedStderr)
        .fmt_fields(log_format::PlainFields)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,hyper_util=warn".into()),
        )
        .init();
    log_writer::flush_on_panic();
    let (listen, threads, config) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("proxy: {e}");
            std::process::exit(2);
        }
    };
    let addr: std::net::SocketAddr = match std::net::ToSocketAddrs::to_socket_addrs(&listen)
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(addr) => addr,
        None => {
            eprintln!("proxy: {listen:?} is not an address to listen on");
            std::process::exit(2);
        }
    };
    // One single-threaded runtime per thread, each with its own listening socket, proxy and
    // upstream connection pool: a stream's server connection, its layers and its upstream
    // connection all run on one thread, with no cross-thread wakeups.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let mut workers = Vec::with_capacity(threads);
    let mut addr = addr;
    for i in 0..threads {
        let (config, bound_tx, mut stop_rx) = (config.clone(), bound_tx.clone(), stop_rx.clone());
        let worker = std::thread::Builder::new()
            .name(format!("proxy-{i}"))
            .spawn(move || {
                // This thread's log lines leave in batches (see `log_writer`).
                let _batch = log_writer::batch_this_thread();
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async move {
                    tokio::spawn(log_writer::flush_when_lines_wait());
                    let listener = match listen::bind_shared(addr) {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = bound_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = bound_tx.send(listener.local_addr());
                    let stop = async move {
                        let _ = stop_rx.wait_for(|stop| *stop).await;
                    };
                    app::serve(listener, Proxy::new(config), stop, Duration::from_secs(10)).await;
                });
            })
            .expect("a thread");
        workers.push(worker);
        match bound_rx.recv() {
            // Port 0 picks a port: the other threads share the one picked.
            Ok(Ok(bound)) => addr = bound,
            Ok(Err(e)) => {
                eprintln!("proxy: cannot listen on {listen}: {e}");
                std::process::exit(1);
            }
            Err(_) => std::process::exit(1),
        }
    }
    for provider in app::routable(&config.providers).iter() {
        tracing::info!(
            provider = provider.name(),
            base_url = provider.base_url(),
            key = if provider.key().is_some() {
                "set"
            } else {
                "none"
            },
            models = provider.model_list().join(","),
            "provider enabled"
        );
    }
    tracing::info!(timeout = ?config.timeout, threads, "listening on http://{addr}");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(ctrl_c_or_term());
    let _ = stop_tx.send(true);
    for worker in workers {
        let _ = worker.join();
    }
}
