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

use llm_proxy::{cli, logging};

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
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,hyper_util=warn".into()),
        )
        .init();
    if let Err(e) = cli::run(options, cli::ctrl_c_or_term()) {
        tracing::error!("{e}");
        eprintln!("llm-proxy: {e}");
        std::process::exit(1);
    }
}
