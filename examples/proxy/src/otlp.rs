//! OTLP export of the per-stream spans (cargo feature `otlp`, `--otlp-endpoint URL`): each
//! stream's `llm_stream` span, its GenAI attributes and its "stream ended" event, sent as
//! protobuf over HTTP to `URL/v1/traces`.
//!
//! The OpenTelemetry SDK's batch processor exports from a thread of its own. Its HTTP client
//! is hyper with rustls (the webpki roots, as the upstream client), on a single-threaded
//! runtime driven by one more thread, `otlp-http`. A worker only hands a finished span to the
//! processor's bounded queue: a full queue drops spans, it never holds up a stream.
//!
//! Only the spans and events of the library's `observe` module are exported, whatever
//! `RUST_LOG` says: the log's filter applies to the log alone.

use bytes::Bytes;
use http::{Request, Response};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::Arc;
use std::time::Duration;
use tracing::{Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// The `service.name` of the exported spans.
pub const SERVICE_NAME: &str = "llm-proxy";

/// Where the spans to export come from: the `llm_stream` span and its "stream ended" event.
const OBSERVE_TARGET: &str = "tower_llm_stream::observe";

/// How long one export may take (connecting included) before the batch is dropped.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the exit waits for the spans still buffered to be sent.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The running export: the tracer provider whose batch processor sends the spans. Make its
/// [`layer`](Self::layer) part of the subscriber, and [`shutdown`](Self::shutdown) it on exit,
/// or the spans of the last seconds are lost.
#[derive(Debug)]
pub struct Export {
    provider: SdkTracerProvider,
}

impl Export {
    /// Starts the export to the collector at `endpoint`, its OTLP/HTTP base URL
    /// (`http://127.0.0.1:4318`: the spans go to `endpoint/v1/traces`). The headers in
    /// `OTEL_EXPORTER_OTLP_HEADERS` (or `OTEL_EXPORTER_OTLP_TRACES_HEADERS`) go with every
    /// export, e.g. a collector's API key; the batch processor reads the `OTEL_BSP_*`
    /// variables. Fails with what to change when the URL is unusable.
    pub fn start(endpoint: &str) -> Result<Self, String> {
        let url = traces_url(endpoint)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(RuntimeClient::start(EXPORT_TIMEOUT)?)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| {
                format!("the OTLP endpoint {endpoint:?}: cannot set up the exporter: {e}")
            })?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(SERVICE_NAME).build())
            .build();
        Ok(Export { provider })
    }

    /// The `tracing` layer that turns the stream spans into OpenTelemetry spans. Each span
    /// field becomes an attribute of the same name (`gen_ai.request.model`, `outcome`, …),
    /// including the fields recorded when the stream ends; the span's events become span
    /// events. No code location, thread, target or busy/idle time attributes, and no
    /// OpenTelemetry context switched on each enter: less work per request.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let layer = tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer(SERVICE_NAME))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false);
        layer.with_filter(Targets::new().with_target(OBSERVE_TARGET, Level::INFO))
    }

    /// Sends the spans still buffered (waiting at most 5 s for the collector) and stops the
    /// export. Returns what went wrong, to print.
    pub fn shutdown(self) -> Result<(), String> {
        self.provider
            .shutdown_with_timeout(SHUTDOWN_TIMEOUT)
            .map_err(|e| format!("the last spans may not have reached the OTLP collector: {e}"))
    }
}

/// `endpoint/v1/traces`, or what is wrong with `endpoint`.
fn traces_url(endpoint: &str) -> Result<String, String> {
    let base = endpoint.trim_end_matches('/');
    let url = format!("{base}/v1/traces");
    let usable = (base.starts_with("http://") || base.starts_with("https://"))
        && url
            .parse::<http::Uri>()
            .is_ok_and(|uri| uri.host().is_some());
    if usable {
        Ok(url)
    } else {
        Err(format!(
            "the OTLP endpoint {endpoint:?}: give the collector's OTLP/HTTP base URL, e.g. \
             http://127.0.0.1:4318 (spans go to URL/v1/traces)"
        ))
    }
}

/// The exporter's HTTP client: hyper on a runtime of its own. The batch processor polls an
/// export on its own thread, outside any runtime, while hyper needs one: each request is
/// spawned onto the `otlp-http` thread's runtime and awaited from there.
#[derive(Debug)]
struct RuntimeClient {
    inner: Arc<HyperClient<HttpsConnector<HttpConnector>>>,
    runtime: tokio::runtime::Handle,
    /// Dropped with the client (when the provider shuts down): the runtime's thread ends.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl RuntimeClient {
    fn start(timeout: Duration) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the OTLP export's runtime: {e}"))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("otlp-http".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                })
            })
            .map_err(|e| format!("cannot start the OTLP export's thread: {e}"))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::upstream::tls_config())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // The client's connection pool runs its tasks on the runtime it was made in.
        let inner = {
            let _runtime = handle.enter();
            HyperClient::new(connector, timeout, None)
        };
        Ok(RuntimeClient {
            inner: Arc::new(inner),
            runtime: handle,
            _stop: stop,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let inner = Arc::clone(&self.inner);
        self.runtime
            .spawn(async move { inner.send_bytes(request).await })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn the_traces_path_is_added_to_the_base_url() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/otlp/").unwrap(),
            "https://otel.example/otlp/v1/traces"
        );
        for wrong in ["127.0.0.1:4318", "grpc://collector:4317", "http://", ""] {
            let error = traces_url(wrong).unwrap_err();
            assert!(error.contains("http://127.0.0.1:4318"), "{error}");
        }
    }
}
