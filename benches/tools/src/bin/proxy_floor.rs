//! The example proxy without its layers: the benchmark's second floor. The same command line,
//! routing, request rewriting, upstream pool and hyper server and client as `llm-proxy`, with
//! the upstream's response relayed as it came (no reframing, usage, timeouts, error events or
//! stream log): what the HTTP work alone costs. Not for production.
//!
//! ```sh
//! cargo run --release -p llm-bench-tools --bin proxy_floor -- --provider mock=http://127.0.0.1:18100
//! ```

fn main() {
    let mut options = match llm_proxy::cli::parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("proxy_floor: {e}");
            std::process::exit(2);
        }
    };
    options.config.without_layers = true;
    if let Err(e) = llm_proxy::cli::run(options, llm_proxy::cli::ctrl_c_or_term()) {
        eprintln!("proxy_floor: {e}");
        std::process::exit(1);
    }
}
