//! The innermost service: sends a prepared request to its provider (over a pooled HTTP/1.1
//! connection, TLS by rustls, or in-process to the demo provider) and returns the provider's
//! response as is. The layers around it do everything else.
//!
//! The upstream connection is driven by the task that streams the response, not by a task of
//! its own: the response body polls the connection (which reads the socket and decodes the
//! next chunk) and then takes the chunk, so an event goes from the upstream socket to the
//! client's without a wakeup in between, and events that arrive together leave together (hyper
//! writes what the body has ready in one `writev`). When the body ends, the connection goes
//! back to this thread's pool; when the client leaves early, it is closed.
//!
//! With `--upstream-http2`, streams share HTTP/2 connections instead (negotiated by ALPN over
//! TLS, with prior knowledge over plain HTTP): up to [`H2_STREAMS`] per connection, each
//! connection driven by a task of its own. That trades a wakeup per chunk for far less memory
//! per open stream (no connection, socket and buffers of its own).

use super::demo::{self, DemoBody};
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Either;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::Service;
use tower_llm_stream::BoxError;

/// The body of a request sent upstream: a JSON body, or a multipart upload streamed through.
pub type UpstreamRequestBody = UnsyncBoxBody<Bytes, BoxError>;

/// The body of a provider's response.
pub type UpstreamBody = Either<PooledBody, DemoBody>;

/// The header clients set the timeout with; read by the timeout layer, never sent upstream.
pub static TIMEOUT_HEADER: http::HeaderName = http::HeaderName::from_static("x-request-timeout");

type Io = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;
/// Boxed: a connection moves between the pool, the request and the body that drives it, and
/// a pointer moves cheaper than hyper's connection state.
type Conn = Box<http1::Connection<Io, UpstreamRequestBody>>;
type Sender = http1::SendRequest<UpstreamRequestBody>;
type Key = (Scheme, Authority);

/// Idle connections kept per upstream, per thread.
const MAX_IDLE: usize = 256;
/// Idle connections older than this are closed rather than reused (servers close theirs).
const IDLE_FOR: Duration = Duration::from_secs(60);
/// Streams opened on one HTTP/2 connection before another is opened: below what servers
/// commonly allow at once (100 to 256), so no request waits for a free stream.
pub const H2_STREAMS: usize = 100;

struct Idle {
    sender: Sender,
    conn: Conn,
    since: Instant,
}

/// An HTTP/2 connection and how many of its streams are open.
struct Shared {
    sender: http2::SendRequest<UpstreamRequestBody>,
    open: Arc<AtomicUsize>,
}

/// Counts one open stream of a [`Shared`] connection until dropped.
struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Pool {
    idle: Mutex<HashMap<Key, Vec<Idle>>>,
    /// Per origin, its HTTP/2 connections; the lock is held while one is opened, so a burst
    /// of requests opens one connection, not one each.
    shared: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Vec<Shared>>>>>,
}

impl Pool {
    fn take(&self, key: &Key) -> Option<Idle> {
        let mut idle = self.idle.lock().expect("the pool lock");
        let list = idle.get_mut(key)?;
        while let Some(candidate) = list.pop() {
            if candidate.since.elapsed() < IDLE_FOR {
                return Some(candidate);
            }
        }
        None
    }

    fn put(&self, key: Key, sender: Sender, conn: Conn) {
        let mut idle = self.idle.lock().expect("the pool lock");
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE {
            list.push(Idle {
                sender,
                conn,
                since: Instant::now(),
            });
        }
    }
}

/// Sends prepared requests.
#[derive(Clone)]
pub struct Upstream {
    connector: HttpsConnector<HttpConnector>,
    pool: Arc<Pool>,
    http2: bool,
}

impl Upstream {
    /// HTTP/1.1 over TCP or TLS (rustls, webpki roots), pooled per thread; with `http2`,
    /// HTTP/2 where the upstream speaks it (see the module docs).
    pub fn new(http2: bool) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config())
            .https_or_http();
        let connector = if http2 {
            connector.enable_all_versions().wrap_connector(http)
        } else {
            connector.enable_http1().wrap_connector(http)
        };
        Upstream {
            connector,
            pool: Arc::default(),
            http2,
        }
    }
}

/// The TLS client configuration for upstreams and collectors: rustls with ring, TLS 1.2 and
/// 1.3, the webpki roots.
pub fn tls_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(rustls::RootCertStore::from_iter(
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
        ))
        .with_no_client_auth()
}

/// Whether a new connection speaks HTTP/2: as ALPN chose over TLS; over plain HTTP, by prior
/// knowledge (asked for with `--upstream-http2`).
fn negotiated_h2(io: &Io) -> bool {
    match io {
        MaybeHttpsStream::Http(_) => true,
        MaybeHttpsStream::Https(tls) => tls.inner().get_ref().1.alpn_protocol() == Some(b"h2"),
    }
}

/// A stream on a shared HTTP/2 connection to `key`'s origin with room for it, if there is
/// one and no connection is being opened meanwhile.
fn h2_stream_now(
    pool: &Pool,
    key: &Key,
) -> Option<(http2::SendRequest<UpstreamRequestBody>, StreamSlot)> {
    let connections = pool.shared.lock().expect("the pool lock").get(key)?.clone();
    let mut connections = connections.try_lock().ok()?;
    take_h2_stream(&mut connections)
}

fn take_h2_stream(
    connections: &mut Vec<Shared>,
) -> Option<(http2::SendRequest<UpstreamRequestBody>, StreamSlot)> {
    connections.retain(|c| !c.sender.is_closed());
    let shared = connections
        .iter()
        .find(|c| c.open.load(Ordering::Relaxed) < H2_STREAMS && c.sender.is_ready())?;
    shared.open.fetch_add(1, Ordering::Relaxed);
    Some((shared.sender.clone(), StreamSlot(shared.open.clone())))
}

/// A stream on a shared HTTP/2 connection to `key`'s origin: an open one with room, else a new
/// one. `Err(io)` hands back a new connection whose server chose HTTP/1.1. Requests that wait
/// while a connection is being opened hold only this future (the connecting one is boxed).
async fn h2_stream(
    pool: &Pool,
    connector: &mut HttpsConnector<HttpConnector>,
    key: &Key,
) -> Result<Result<(http2::SendRequest<UpstreamRequestBody>, StreamSlot), Io>, BoxError> {
    let connections = pool
        .shared
        .lock()
        .expect("the pool lock")
        .entry(key.clone())
        .or_default()
        .clone();
    let mut connections = connections.lock().await;
    if let Some(stream) = take_h2_stream(&mut connections) {
        return Ok(Ok(stream));
    }
    Box::pin(async {
        let io = connect(connector, key).await?;
        if !negotiated_h2(&io) {
            return Ok(Err(io));
        }
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream HTTP/2 connection ended with an error");
            }
        });
        let open = Arc::new(AtomicUsize::new(1));
        connections.push(Shared {
            sender: sender.clone(),
            open: open.clone(),
        });
        Ok(Ok((sender, StreamSlot(open))))
    })
    .await
}

/// A new connection to `key`'s origin.
async fn connect(connector: &mut HttpsConnector<HttpConnector>, key: &Key) -> Result<Io, BoxError> {
    let origin = Uri::builder()
        .scheme(key.0.clone())
        .authority(key.1.clone())
        .path_and_query("/")
        .build()?;
    std::future::poll_fn(|cx| connector.poll_ready(cx)).await?;
    connector.call(origin).await
}

/// Whether a connection is still open: poll it once (the server may have closed it).
fn alive(conn: &mut Conn, cx: &mut Context<'_>) -> bool {
    matches!(Pin::new(conn).poll(cx), Poll::Pending)
}

impl Service<Request<UpstreamRequestBody>> for Upstream {
    type Response = Response<UpstreamBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<UpstreamRequestBody>) -> Self::Future {
        request.headers_mut().remove(&TIMEOUT_HEADER);
        // Uncompressed, please: the layers read the body (one that comes compressed anyway is
        // decoded before them).
        request.headers_mut().insert(
            http::header::ACCEPT_ENCODING,
            http::HeaderValue::from_static("identity"),
        );
        if request.uri().host() == Some(demo::HOST) {
            return Box::pin(async move { Ok(demo::respond(request).await.map(Either::Right)) });
        }
        let (mut connector, pool, http2) = (self.connector.clone(), self.pool.clone(), self.http2);
        Box::pin(async move {
            let uri = request.uri().clone();
            let key: Key = (
                uri.scheme()
                    .cloned()
                    .ok_or("the upstream URL has no scheme")?,
                uri.authority()
                    .cloned()
                    .ok_or("the upstream URL has no host")?,
            );
            let mut fresh = None;
            if http2 {
                let stream = match h2_stream_now(&pool, &key) {
                    Some(stream) => Ok(stream),
                    None => Box::pin(h2_stream(&pool, &mut connector, &key)).await?,
                };
                match stream {
                    Ok((mut sender, slot)) => {
                        // HTTP/2 takes the absolute form (it becomes :scheme and :authority).
                        let response = sender.send_request(request).await?;
                        return Ok(response.map(|incoming| {
                            Either::Left(PooledBody {
                                incoming,
                                conn: None,
                                sender: None,
                                key: None,
                                pool,
                                ended: false,
                                _stream: Some(slot),
                            })
                        }));
                    }
                    Err(io) => fresh = Some(io),
                }
            }
            // An idle connection that is still open, else a new one.
            let mut reused = None;
            while let Some(mut idle) = fresh.is_none().then(|| pool.take(&key)).flatten() {
                // Drive it until it takes a request, or turns out closed.
                let ready = std::future::poll_fn(|cx| {
                    if Pin::new(&mut idle.conn).poll(cx).is_ready() {
                        return Poll::Ready(false);
                    }
                    idle.sender.poll_ready(cx).map(|r| r.is_ok())
                });
                if tokio::time::timeout(Duration::from_millis(50), ready).await == Ok(true) {
                    reused = Some((idle.sender, idle.conn));
                    break;
                }
            }
            let (mut sender, mut conn) = match reused {
                Some(pair) => pair,
                // Boxed, so the connecting state does not weigh on every request's future.
                None => {
                    Box::pin(async {
                        let io = match fresh {
                            Some(io) => io,
                            None => connect(&mut connector, &key).await?,
                        };
                        let (sender, conn) = http1::handshake(io).await?;
                        Ok::<_, BoxError>((sender, Box::new(conn)))
                    })
                    .await?
                }
            };
            // HTTP/1.1 wants the origin form on the wire, with a Host header.
            if !request.headers().contains_key(http::header::HOST) {
                let host = http::HeaderValue::from_str(key.1.as_str())?;
                request.headers_mut().insert(http::header::HOST, host);
            }
            let path = uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .parse::<Uri>()?;
            *request.uri_mut() = path;
            // Send, driving the connection until the response head arrives.
            let mut responding = std::pin::pin!(sender.send_request(request));
            let mut conn_done = false;
            let response = std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = responding.as_mut().poll(cx) {
                    return Poll::Ready(result);
                }
                if !conn_done && let Poll::Ready(result) = Pin::new(&mut conn).poll(cx) {
                    conn_done = true;
                    if let Err(e) = result {
                        return Poll::Ready(Err(e));
                    }
                    // Closed: the response future resolves (with an error) next poll.
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            })
            .await?;
            let conn = (!conn_done).then_some(conn);
            Ok(response.map(move |incoming| {
                Either::Left(PooledBody {
                    incoming,
                    conn,
                    sender: Some(sender),
                    key: Some(key),
                    pool,
                    ended: false,
                    _stream: None,
                })
            }))
        })
    }
}

/// A provider's response body that drives its own connection (see the module docs).
pub struct PooledBody {
    incoming: Incoming,
    conn: Option<Conn>,
    sender: Option<Sender>,
    key: Option<Key>,
    pool: Arc<Pool>,
    ended: bool,
    /// On a shared HTTP/2 connection: its count of open streams, until this body is dropped.
    _stream: Option<StreamSlot>,
}

impl PooledBody {
    /// The body ended: the connection goes back to the pool if it is ready for another request.
    fn recycle(&mut self, cx: &mut Context<'_>) {
        let (Some(mut conn), Some(sender), Some(key)) =
            (self.conn.take(), self.sender.take(), self.key.take())
        else {
            return;
        };
        if alive(&mut conn, cx) {
            self.pool.put(key, sender, conn);
        }
    }
}

impl Drop for PooledBody {
    /// The layers stop reading at the stream's own end (`[DONE]`, a terminal event), before the
    /// HTTP body's end (the chunked terminator) is decoded. If that end is already here, take
    /// it, so the connection can be reused; if more is coming (the client left mid-stream),
    /// the connection is closed.
    fn drop(&mut self) {
        if self.ended || self.conn.is_none() {
            return;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..4 {
            if let Some(conn) = self.conn.as_mut()
                && Pin::new(conn).poll(&mut cx).is_ready()
            {
                return;
            }
            match Pin::new(&mut self.incoming).poll_frame(&mut cx) {
                Poll::Ready(None) => {
                    self.ended = true;
                    self.recycle(&mut cx);
                    return;
                }
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(_))) | Poll::Pending => return,
            }
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(conn) = this.conn.as_mut() {
            // Reads the socket and decodes the next chunk into the body channel.
            if let Poll::Ready(result) = Pin::new(conn).poll(cx) {
                this.conn = None;
                if result.is_err() {
                    // The body channel reports the failure (its sender was dropped).
                    cx.waker().wake_by_ref();
                }
            }
        }
        let frame = Pin::new(&mut this.incoming).poll_frame(cx);
        // The end, seen as `None` or (hyper stops polling there) as the last frame.
        if matches!(frame, Poll::Ready(None))
            || (matches!(frame, Poll::Ready(Some(Ok(_)))) && this.incoming.is_end_stream())
        {
            this.ended = true;
            this.recycle(cx);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
