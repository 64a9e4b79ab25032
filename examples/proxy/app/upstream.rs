//! The innermost service: sends a prepared request to its provider (over the pooled HTTPS
//! client, or in-process to the demo provider) and returns the provider's response as is.
//! The layers around it do everything else.

use super::demo::{self, DemoBody};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Either;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::Service;
use tower_llm_stream::BoxError;

/// The body of a request sent upstream: a JSON body, or a multipart upload streamed through.
pub type UpstreamRequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// The body of a provider's response.
pub type UpstreamBody = Either<Incoming, DemoBody>;

/// The header clients set the timeout with; read by the timeout layer, never sent upstream.
pub const TIMEOUT_HEADER: &str = "x-request-timeout";

/// Sends prepared requests.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, UpstreamRequestBody>,
}

impl Upstream {
    /// A pooled HTTP/1.1 + HTTP/2 client, TLS by rustls with the webpki roots.
    pub fn new() -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(
                rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports TLS 1.2 and 1.3")
                .with_root_certificates(rustls::RootCertStore::from_iter(
                    webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
                ))
                .with_no_client_auth(),
            )
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(https);
        Upstream { client }
    }
}

impl Service<Request<UpstreamRequestBody>> for Upstream {
    type Response = Response<UpstreamBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<UpstreamRequestBody>) -> Self::Future {
        request.headers_mut().remove(TIMEOUT_HEADER);
        if request.uri().host() == Some(demo::HOST) {
            return Box::pin(async move { Ok(demo::respond(request).await.map(Either::Right)) });
        }
        let client = self.client.clone();
        Box::pin(async move {
            let response = client.request(request).await?;
            Ok(response.map(Either::Left))
        })
    }
}
