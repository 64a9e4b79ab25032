//! The example reverse proxy: OpenAI-compatible endpoints in front of many providers, every
//! stream standardized by the crate's layers.
//!
//! ```sh
//! cargo run --release -p llm-proxy     # http://127.0.0.1:8080, the demo provider
//! curl -N http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \
//!   -d '{"model":"demo/echo","stream":true,"messages":[{"role":"user","content":"Hi"}]}'
//! ANTHROPIC_API_KEY=sk-ant-… cargo run --release -p llm-proxy -- --provider vllm=http://127.0.0.1:8000
//! ```
//!
//! Providers come from the environment (`P_API_KEY` / `P_BASE_URL` / `P_MODELS` for P in
//! OPENAI, ANTHROPIC, GEMINI, COHERE, MISTRAL, GROQ, DEEPSEEK, OPENROUTER, OLLAMA) and from
//! `--provider NAME=BASE_URL` for any OpenAI-compatible server (its key, if it needs one, in
//! `NAME_API_KEY`, its models in `NAME_MODELS`). Models are named `provider/model`.
//!
//! Built with the cargo feature `otlp`, `--otlp-endpoint http://127.0.0.1:4318` also sends
//! each stream's `llm_stream` span to an OpenTelemetry collector (the library's `otlp` module).

#[cfg(feature = "otlp")]
use llm_proxy::otlp;
use llm_proxy::{cli, logging};
use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::fmt::{self, format::DefaultFields, format::Format};
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
use tracing_subscriber::registry;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The log: each event one line on standard error, through `writer`.
fn log<S>(
    writer: logging::Redacting<NonBlocking>,
) -> fmt::Layer<S, DefaultFields, Format, logging::Redacting<NonBlocking>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer()
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
}

fn main() {
    let options = match cli::parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("llm-proxy: {e}");
            std::process::exit(2);
        }
    };
    // Log lines are written by a thread of their own (tracing-appender), so a worker never
    // waits on standard error; the guard writes what is left when main returns. Every
    // configured key is redacted from them first.
    let (writer, _flush_at_exit) = tracing_appender::non_blocking(std::io::stderr());
    let writer = logging::Redacting::new(writer, logging::secrets(&options.config));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,hyper_util=warn".into());
    // The stream spans to an OpenTelemetry collector (`--otlp-endpoint`, feature `otlp`).
    #[cfg(feature = "otlp")]
    let otlp = match options.otlp_endpoint.as_deref().map(otlp::Export::start) {
        None => None,
        Some(Ok(export)) => Some(export),
        Some(Err(e)) => {
            eprintln!("llm-proxy: {e}");
            std::process::exit(2);
        }
    };
    #[cfg(feature = "otlp")]
    let export = otlp.as_ref().map(|otlp| otlp.layer());
    #[cfg(not(feature = "otlp"))]
    let export: Option<tracing_subscriber::layer::Identity> = None;
    match export {
        // RUST_LOG filters the log alone: the stream spans are exported at any log level.
        Some(export) => registry()
            .with(log(writer).with_filter(filter))
            .with(export)
            .init(),
        // The log only, RUST_LOG filtering at the callsites (the least work per request).
        None => registry().with(filter).with(log(writer)).init(),
    }
    let result = cli::run(options, cli::ctrl_c_or_term());
    // The spans still buffered go to the collector before the process ends.
    #[cfg(feature = "otlp")]
    if let Some(otlp) = otlp
        && let Err(e) = otlp.shutdown()
    {
        tracing::warn!("{e}");
    }
    if let Err(e) = result {
        tracing::error!("{e}");
        eprintln!("llm-proxy: {e}");
        std::process::exit(1);
    }
}
