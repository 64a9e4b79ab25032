//! The example proxy on a loopback port (feature `proxy`).

use llm_proxy as app;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// The proxy with `config` on a loopback port, never shut down: its address.
pub async fn start_proxy(config: app::Config) -> SocketAddr {
    start_proxy_until(config, std::future::pending(), Duration::from_secs(1)).await
}

/// The proxy with `config` on a loopback port until `shutdown` (then `grace`): its address.
pub async fn start_proxy_until(
    config: app::Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app::serve(
        listener,
        app::Proxy::new(config),
        shutdown,
        grace,
    ));
    addr
}
