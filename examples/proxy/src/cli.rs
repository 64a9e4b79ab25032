//! The proxy's command line and its process: worker threads, each a single-threaded runtime
//! with its own listening socket, and the shutdown signal.

use crate::resume::{ResumeConfig, Store};
use crate::{Config, Proxy, listen, routable};
use std::time::Duration;
use tower_llm_stream::provider::{Provider, ProviderKind, Providers};
use tower_llm_stream::resume::{MemoryStore, RedisStore};

/// What the command line asks for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen (`--listen`, `127.0.0.1:8080`).
    pub listen: String,
    /// Worker threads (`--threads`, the CPU count).
    pub threads: usize,
    /// The proxy's configuration.
    pub config: Config,
    /// The OpenTelemetry collector to export the stream spans to, its OTLP/HTTP base URL
    /// (`--otlp-endpoint`, else `OTEL_EXPORTER_OTLP_ENDPOINT`). Always `None` in a build
    /// without the `otlp` feature, which refuses the flag; the binary's `main` starts the
    /// export.
    pub otlp_endpoint: Option<String>,
    /// The Redis that keeps the resumable streams (`--redis-url`, with `--resumable`), shared
    /// by replicas. [`run`] connects it, on each worker thread's runtime, and puts it in the
    /// configuration in place of the in-memory store `parse_args` leaves there.
    pub redis_url: Option<String>,
}

/// The `--help` text.
pub const USAGE: &str = "\
usage: llm-proxy [--listen ADDR] [--timeout SECS] [--max-timeout SECS] [--provider NAME=BASE_URL]...
                 [--max-body-bytes N] [--max-upload-bytes N] [--threads N] [--upstream-http2]
                 [--header-timeout SECS] [--body-timeout SECS] [--stream-deadline SECS]
                 [--max-connections N] [--max-response-bytes N] [--otlp-endpoint URL]
                 [--resumable [--resume-ttl SECS] [--resume-memory-bytes N] [--redis-url redis://HOST:PORT]]

  --listen ADDR             where to listen (default 127.0.0.1:8080)
  --timeout SECS            wait for the response head and between events (default 30); a
                            client that reads nothing for this long is dropped (client_stalled)
  --max-timeout SECS        the most a client may set with x-request-timeout (default 600)
  --provider NAME=BASE_URL  an OpenAI-compatible upstream (vLLM, llama.cpp, ...); key from
                            NAME_API_KEY, models from NAME_MODELS (comma-separated)
  --max-body-bytes N        largest JSON request body (default 4194304)
  --max-upload-bytes N      largest transcription upload (default 26214400)
  --header-timeout SECS     a connection must send its whole request head within this, else it
                            is closed (default 10)
  --body-timeout SECS       a request body must arrive whole within this, else 408 (default 30)
  --stream-deadline SECS    the longest a stream may last, then the stream_deadline error event
                            (default 1800)
  --max-connections N       connections open at once; more wait in the listen backlog (default:
                            what the open-file limit allows, two descriptors per stream)
  --max-response-bytes N    largest upstream answer folded into one JSON reply, else 502
                            response_too_large (default 67108864)
  --fallback MODEL=FALLBACK[,FALLBACK...]
                            when MODEL (provider/model) fails before its stream's first content
                            event (connection refused or reset, head timeout, 429, 5xx, an
                            error event or a cut), try each FALLBACK in turn; the client never
                            sees the failed attempt. The response header x-served-by names the
                            model that answered. Repeatable
  --threads N               worker threads, each a single-threaded runtime with its own
                            listening socket and upstream pool (default: the CPU count)
  --upstream-http2          HTTP/2 to upstreams: by ALPN over TLS, with prior knowledge (h2c)
                            over plain HTTP; up to 100 streams share a connection (far less
                            memory per open stream, a wakeup per chunk more)
  --resumable               resumable streams: a streamed chat or text completion sent with the
                            header x-resumable: 1 gets x-stream-id: ID and an id: N on each
                            event, runs to its end even when its client leaves, and is read
                            again with GET /v1/streams/ID and Last-Event-ID: N (the events
                            after N, then the rest live); DELETE /v1/streams/ID stops it. Kept
                            in this process's memory, unless --redis-url
  --resume-ttl SECS         how long a resumable stream stays readable after its last event
                            (default 600)
  --resume-memory-bytes N   the most event bytes this process's memory keeps for resumable
                            streams (default 268435456, 256 MiB; 16 MiB a stream at most, or
                            this if less): the oldest finished streams are evicted first, and a
                            new stream that cannot fit ends with stream_store_error. Not with
                            --redis-url (Redis's own maxmemory bounds it there)
  --redis-url URL           keep resumable streams in this Redis (redis://[:PASSWORD@]HOST:PORT
                            [/DB], Redis 5 or later), shared by replicas: a stream started on
                            one proxy resumes on any other, and its readers get the
                            stream_producer_lost error event within 15 s if that proxy dies.
                            Needs --resumable; checked at start
  --otlp-endpoint URL       export each stream's llm_stream span to an OpenTelemetry collector
                            over OTLP/HTTP, to URL/v1/traces (e.g. http://127.0.0.1:4318); needs
                            a build with `cargo run -p llm-proxy --features otlp`

Environment: P_API_KEY, P_BASE_URL, P_MODELS for P in OPENAI ANTHROPIC GEMINI COHERE MISTRAL
GROQ DEEPSEEK OPENROUTER OLLAMA; Bedrock (signed with SigV4): AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION (AWS_SESSION_TOKEN, BEDROCK_BASE_URL, BEDROCK_MODELS);
PROXY_API_KEY makes clients authenticate; RUST_LOG; with the otlp feature,
OTEL_EXPORTER_OTLP_ENDPOINT (as --otlp-endpoint) and OTEL_EXPORTER_OTLP_HEADERS.
The demo provider (models demo/echo, demo/slow, demo/instant, demo/broken) needs nothing.
GET /metrics is the streams' Prometheus scrape (behind PROXY_API_KEY when it is set).";

fn seconds(flag: &str, value: Option<String>) -> Result<Duration, String> {
    let value = value.ok_or(format!("{flag} needs a value"))?;
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.001 && *s <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or(format!(
            "{flag} {value:?}: give seconds, from 0.001 to 86400"
        ))
}

fn number(flag: &str, value: Option<String>) -> Result<u64, String> {
    let value = value.ok_or(format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag} {value:?}: give a number of bytes"))
}

/// The collector's URL given by `source` (the flag or the variable), checked enough to fail
/// now rather than at the first export: the export itself is set up by `main`, and only in a
/// build with the `otlp` feature.
fn otlp_endpoint(source: &str, url: String) -> Result<String, String> {
    if !cfg!(feature = "otlp") {
        return Err(format!(
            "{source}: this llm-proxy was built without OTLP export; rebuild it with \
             `cargo run -p llm-proxy --features otlp -- ...`"
        ));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url)
    } else {
        Err(format!(
            "{source} {url:?}: give the collector's OTLP/HTTP base URL, e.g. \
             http://127.0.0.1:4318 (spans go to URL/v1/traces)"
        ))
    }
}

/// Reads the command line (without the program name): the address to listen on, the worker
/// thread count and the proxy's configuration, or what is wrong with it. `--help` prints
/// [`USAGE`] and exits.
pub fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut args = args.peekable();
    let mut listen = "127.0.0.1:8080".to_owned();
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut otlp = None;
    let (mut resumable, mut resume_ttl, mut redis_url) = (false, None, None);
    let mut resume_memory = None;
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
            "--header-timeout" => config.header_timeout = seconds("--header-timeout", args.next())?,
            "--body-timeout" => config.body_timeout = seconds("--body-timeout", args.next())?,
            "--stream-deadline" => {
                config.stream_deadline = seconds("--stream-deadline", args.next())?
            }
            "--max-connections" => {
                config.max_connections = Some(number("--max-connections", args.next())?)
                    .filter(|n| *n > 0)
                    .ok_or("--max-connections needs a number above 0")?
                    as usize
            }
            "--max-response-bytes" => {
                config.max_response_bytes = number("--max-response-bytes", args.next())? as usize
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
                    provider = provider.models_from_list(&models);
                }
                config.providers.insert(provider);
            }
            "--upstream-http2" => config.upstream_http2 = true,
            "--fallback" => {
                let spec = args
                    .next()
                    .ok_or("--fallback needs MODEL=FALLBACK[,FALLBACK...]")?;
                let (model, chain) = fallback_chain(&spec)?;
                config.fallbacks.insert(model, chain);
            }
            "--otlp-endpoint" => {
                let url = args
                    .next()
                    .ok_or("--otlp-endpoint needs a URL, e.g. http://127.0.0.1:4318")?;
                otlp = Some(otlp_endpoint("--otlp-endpoint", url)?);
            }
            "--resumable" => resumable = true,
            "--resume-ttl" => resume_ttl = Some(seconds("--resume-ttl", args.next())?),
            "--resume-memory-bytes" => {
                resume_memory = Some(number("--resume-memory-bytes", args.next())? as usize);
            }
            "--redis-url" => {
                redis_url = Some(
                    args.next()
                        .ok_or("--redis-url needs a URL, e.g. redis://127.0.0.1:6379")?,
                )
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    // The standard variable, read only where it can be acted on: a build without the
    // feature ignores it (it may be set for other programs), but refuses the flag.
    if otlp.is_none()
        && cfg!(feature = "otlp")
        && let Some(url) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .ok()
            .filter(|url| !url.is_empty())
    {
        otlp = Some(otlp_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", url)?);
    }
    if resumable {
        let ttl = resume_ttl.unwrap_or(ResumeConfig::DEFAULT_TTL);
        // This process's memory, unless --redis-url: `run` connects the Redis store then, on
        // each worker's runtime, in its place.
        let mut resume = ResumeConfig::memory(ttl);
        if let Some(bytes) = resume_memory {
            if redis_url.is_some() {
                return Err("--resume-memory-bytes bounds the in-memory store, not Redis: drop it, or drop --redis-url (bound Redis with its maxmemory)".to_owned());
            }
            let store = MemoryStore::new()
                .max_total_bytes(bytes)
                .max_stream_bytes(bytes.min(MemoryStore::DEFAULT_MAX_STREAM_BYTES));
            resume.store = Store::Memory(store);
        }
        config.resume = Some(resume);
    } else if resume_ttl.is_some() || resume_memory.is_some() {
        return Err("--resume-ttl and --resume-memory-bytes need --resumable".to_owned());
    } else if redis_url.is_some() {
        return Err(
            "--redis-url keeps resumable streams, which are off: add --resumable".to_owned(),
        );
    }
    check_fallbacks(&config)?;
    Ok(Options {
        listen,
        threads,
        config,
        otlp_endpoint: otlp,
        redis_url,
    })
}

/// Reads `MODEL=FALLBACK[,FALLBACK...]`.
fn fallback_chain(spec: &str) -> Result<(String, Vec<String>), String> {
    let (model, chain) = spec.split_once('=').ok_or(format!(
        "--fallback {spec:?}: write MODEL=FALLBACK[,FALLBACK...]"
    ))?;
    let chain: Vec<String> = chain
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    if model.trim().is_empty() || chain.is_empty() {
        return Err(format!(
            "--fallback {spec:?}: write MODEL=FALLBACK[,FALLBACK...], models named provider/model"
        ));
    }
    Ok((model.trim().to_owned(), chain))
}

/// Every model of a `--fallback` must route, so a typo fails at start, not at the first
/// outage.
fn check_fallbacks(config: &Config) -> Result<(), String> {
    let providers = crate::routable(&config.providers);
    for (model, chain) in &config.fallbacks {
        for name in std::iter::once(model).chain(chain) {
            if let Err(e) = providers.route(name) {
                return Err(format!(
                    "--fallback {model}={}: {name:?} does not route ({}): configure its provider (its P_API_KEY, or --provider NAME=BASE_URL) or fix the name",
                    chain.join(","),
                    e.message
                ));
            }
        }
    }
    Ok(())
}

/// Resolves when the process gets Ctrl-C or SIGTERM.
pub async fn ctrl_c_or_term() {
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

/// Runs the proxy as [`Options`] say until `shutdown` resolves, then lets open requests
/// finish (10 s grace). Returns the error to print when it cannot listen, or cannot reach the
/// Redis of `--redis-url`.
///
/// One single-threaded runtime per thread, each with its own listening socket
/// (`SO_REUSEPORT`), proxy and upstream connection pool: a stream's server connection, its
/// layers and its upstream connection all run on one thread, with no cross-thread wakeups.
pub fn run(
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let Options {
        listen,
        threads,
        config,
        // The export is set up with the log, by the binary's main.
        otlp_endpoint: _,
        redis_url,
    } = options;
    let mut addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&listen)
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            format!("{listen:?} is not an address to listen on: pass --listen HOST:PORT")
        })?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let mut workers = Vec::with_capacity(threads);
    // Each worker serves its share of the connections.
    let mut worker_config = config.clone();
    worker_config.max_connections = config.max_connections.div_ceil(threads).max(1);
    for i in 0..threads {
        let (mut config, bound_tx, mut stop_rx, redis_url) = (
            worker_config.clone(),
            bound_tx.clone(),
            stop_rx.clone(),
            redis_url.clone(),
        );
        let listen = listen.clone();
        let worker = std::thread::Builder::new()
            .name(format!("proxy-{i}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async move {
                    // A Redis connection runs on the runtime that made it: one store for each
                    // worker, all on the same Redis.
                    if let (Some(url), Some(resume)) = (redis_url, config.resume.as_mut()) {
                        match RedisStore::connect(&url).await {
                            Ok(store) => resume.store = Store::Redis(store),
                            // What to do is in the message: start redis-server, give the
                            // password, or fix --redis-url.
                            Err(e) => {
                                let _ = bound_tx.send(Err(e.to_string()));
                                return;
                            }
                        }
                    }
                    let listener = match listen::bind_shared(addr) {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = bound_tx.send(Err(format!("cannot listen on {listen}: {e}")));
                            return;
                        }
                    };
                    let _ = bound_tx.send(
                        listener
                            .local_addr()
                            .map_err(|e| format!("cannot listen on {listen}: {e}")),
                    );
                    let stop = async move {
                        let _ = stop_rx.wait_for(|stop| *stop).await;
                    };
                    crate::serve(listener, Proxy::new(config), stop, Duration::from_secs(10)).await;
                });
            })
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
        workers.push(worker);
        match bound_rx.recv() {
            // Port 0 picks a port: the other threads share the one picked.
            Ok(Ok(bound)) => addr = bound,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a worker thread died while starting".to_owned()),
        }
    }
    for provider in routable(&config.providers).iter() {
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
    tracing::info!(
        timeout = ?config.timeout,
        threads,
        max_connections = config.max_connections,
        "listening on http://{addr}"
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(shutdown);
    let _ = stop_tx.send(true);
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    fn parse(args: &[&str]) -> Result<super::Options, String> {
        parse_args(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn otlp_endpoint_needs_the_feature() {
        let parsed = parse(&["--otlp-endpoint", "http://127.0.0.1:4318"]);
        if cfg!(feature = "otlp") {
            let options = parsed.unwrap();
            assert_eq!(
                options.otlp_endpoint.as_deref(),
                Some("http://127.0.0.1:4318")
            );
            let error = parse(&["--otlp-endpoint", "127.0.0.1:4318"]).unwrap_err();
            assert!(error.contains("http://127.0.0.1:4318"), "{error}");
        } else {
            let error = parsed.unwrap_err();
            assert!(
                error.contains("cargo run -p llm-proxy --features otlp"),
                "{error}"
            );
        }
        let error = parse(&["--otlp-endpoint"]).unwrap_err();
        assert!(error.contains("needs a URL"), "{error}");
    }

    #[test]
    fn resumable_streams_and_their_ttl() {
        assert!(parse(&[]).unwrap().config.resume.is_none());
        let resume = parse(&["--resumable"]).unwrap().config.resume.unwrap();
        assert_eq!(resume.ttl, std::time::Duration::from_secs(600));
        let resume = parse(&["--resume-ttl", "30", "--resumable"])
            .unwrap()
            .config
            .resume
            .unwrap();
        assert_eq!(resume.ttl, std::time::Duration::from_secs(30));
        let error = parse(&["--resume-ttl", "30"]).unwrap_err();
        assert!(error.contains("need --resumable"), "{error}");
        let error = parse(&["--resumable", "--resume-ttl", "x"]).unwrap_err();
        assert!(error.contains("--resume-ttl"), "{error}");
        let options = parse(&["--resumable", "--redis-url", "redis://127.0.0.1:1"]).unwrap();
        assert_eq!(options.redis_url.as_deref(), Some("redis://127.0.0.1:1"));
        let error = parse(&["--redis-url", "redis://127.0.0.1:1"]).unwrap_err();
        assert!(error.contains("add --resumable"), "{error}");
        let error = parse(&["--resumable", "--redis-url"]).unwrap_err();
        assert!(error.contains("needs a URL"), "{error}");
    }

    #[tokio::test]
    async fn the_memory_store_is_bounded_as_asked() {
        use tower_llm_stream::resume::StreamStore;
        let resume = parse(&["--resumable", "--resume-memory-bytes", "1000"])
            .unwrap()
            .config
            .resume
            .unwrap();
        let ttl = std::time::Duration::from_secs(60);
        resume.store.create("a", ttl).await.unwrap();
        let event = bytes::Bytes::from(format!("data: {}\n\n", "x".repeat(600)));
        resume.store.append("a", 1, event.clone()).await.unwrap();
        // A second event would take the stream past 1,000 bytes.
        assert!(resume.store.append("a", 2, event).await.is_err());
        let error = parse(&["--resume-memory-bytes", "1000"]).unwrap_err();
        assert!(error.contains("need --resumable"), "{error}");
        let error = parse(&["--resumable", "--resume-memory-bytes", "1k"]).unwrap_err();
        assert!(error.contains("number of bytes"), "{error}");
        let error = parse(&[
            "--resumable",
            "--redis-url",
            "redis://127.0.0.1:1",
            "--resume-memory-bytes",
            "1000",
        ])
        .unwrap_err();
        assert!(error.contains("maxmemory"), "{error}");
    }

    #[test]
    fn an_unreachable_redis_stops_the_start_with_what_to_do() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("redis://127.0.0.1:{port}");
        let options = parse(&["--listen", "127.0.0.1:0", "--threads", "1", "--resumable"])
            .map(|mut options| {
                options.redis_url = Some(url.clone());
                options
            })
            .unwrap();
        let error = super::run(options, std::future::pending()).unwrap_err();
        assert!(
            error.contains(&format!("cannot reach Redis at {url}")),
            "{error}"
        );
        assert!(
            error.contains("is redis-server running? (--redis-url)"),
            "{error}"
        );
    }
}
