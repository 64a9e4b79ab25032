//! A bare TCP relay, the floor of the performance runner (`benches/proxy_compare.py`): what a
//! second process in the path costs on a machine before any HTTP, SSE or JSON work. Each
//! client connection gets its own upstream connection; bytes are copied both ways as they
//! come (`tokio::io::copy_bidirectional`), nothing is parsed.
//!
//! ```sh
//! cargo run --release -p llm-bench-tools --bin tcp_relay -- --listen 127.0.0.1:9400 --upstream 127.0.0.1:9101
//! ```

use llm_proxy::listen;

use std::net::SocketAddr;

fn parse_args() -> Result<(SocketAddr, SocketAddr, usize), String> {
    let (mut listen, mut upstream, mut threads) = (None, None, 2);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => listen = Some(value()?),
            "--upstream" => upstream = Some(value()?),
            "--threads" => {
                threads = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--threads needs a number above 0")?
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let address = |text: Option<String>, name: &str| {
        text.ok_or(format!("{name} is required"))?
            .parse::<SocketAddr>()
            .map_err(|e| format!("{name}: {e}"))
    };
    Ok((
        address(listen, "--listen")?,
        address(upstream, "--upstream")?,
        threads,
    ))
}

fn main() {
    let (listen, upstream, threads) = match parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!(
                "tcp_relay: {e}\nusage: tcp_relay --listen ADDR --upstream ADDR [--threads N]"
            );
            std::process::exit(2);
        }
    };
    // As the proxy runs: one single-threaded runtime per thread, each with its own listening
    // socket (`SO_REUSEPORT`), so a connection's both sides are served by one thread.
    let workers: Vec<_> = (0..threads)
        .map(|_| std::thread::spawn(move || serve(listen, upstream)))
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
}

fn serve(listen: SocketAddr, upstream: SocketAddr) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let listener = listen::bind_shared(listen).unwrap_or_else(|e| {
            eprintln!("tcp_relay: cannot listen on {listen}: {e}");
            std::process::exit(1);
        });
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
}
