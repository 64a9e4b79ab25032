//! The load itself: `concurrency` workers, each on its own HTTP/1.1 connection (kept alive),
//! sending streaming requests until `requests` have been sent, reading every stream to its
//! end. No spawned task per request, no buffering of bodies: each chunk is scanned and dropped.

use crate::report::{Percentiles, Report, StreamCheck};
use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// What to send, how much, how.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The streaming endpoint, e.g. `http://127.0.0.1:8080/v1/chat/completions`.
    pub url: Uri,
    /// The JSON body of every request.
    pub body: Bytes,
    /// `authorization` header value, if any.
    pub authorization: Option<String>,
    /// Further headers sent with every request, as (name, value) (e.g. a gateway's routing
    /// headers).
    pub headers: Vec<(String, String)>,
    /// Streams open at once.
    pub concurrency: usize,
    /// Streams in all.
    pub requests: usize,
    /// Content chunks each stream must deliver (else it counts as lost).
    pub expect_content: Option<usize>,
    /// Hold each stream open this long after its first event, then leave (idle-stream tests).
    pub hold: Option<Duration>,
    /// Start the workers spread over this long instead of all at once (steady arrivals rather
    /// than synchronized waves).
    pub ramp: Duration,
}

/// A `name: value` header line (as `curl -H` takes it), checked: its name and value as sent.
pub fn parse_header(line: &str) -> Result<(String, String), String> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| format!("{line:?} is not `name: value`"))?;
    let (name, value) = (name.trim(), value.trim());
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name"))?;
    http::HeaderValue::from_str(value).map_err(|_| format!("{value:?} is not a header value"))?;
    Ok((name.to_owned(), value.to_owned()))
}

#[derive(Default)]
struct Shared {
    ttfe: Vec<Duration>,
    total: Vec<Duration>,
    report: Report,
}

enum Outcome {
    Ok,
    Lost,
    Http(u16),
    Failed(String),
}

/// Runs the load and reports.
pub async fn run(config: LoadConfig) -> Report {
    let config = Arc::new(config);
    let tickets = Arc::new(AtomicUsize::new(config.requests));
    let open = Arc::new(AtomicUsize::new(0));
    let max_open = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Mutex::new(Shared::default()));
    let started = Instant::now();
    let count = config.concurrency.min(config.requests).max(1);
    let workers: Vec<_> = (0..count)
        .map(|i| {
            let delay = config.ramp.mul_f64(i as f64 / count as f64);
            let (config, tickets, shared) = (config.clone(), tickets.clone(), shared.clone());
            let (open, max_open) = (open.clone(), max_open.clone());
            tokio::spawn(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let mut ttfe = Vec::new();
                let mut total = Vec::new();
                let mut local = Report::default();
                let mut sender: Option<http1::SendRequest<Full<Bytes>>> = None;
                while tickets
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let outcome = one(
                        &config,
                        &mut sender,
                        &mut ttfe,
                        &mut total,
                        &mut local,
                        &open,
                        &max_open,
                    )
                    .await;
                    local.requests += 1;
                    match outcome {
                        Outcome::Ok => local.ok += 1,
                        Outcome::Lost => local.lost += 1,
                        Outcome::Http(status) => {
                            local.http_errors += 1;
                            local
                                .first_failure
                                .get_or_insert_with(|| format!("HTTP {status}"));
                        }
                        Outcome::Failed(why) => {
                            local.failures += 1;
                            local.first_failure.get_or_insert(why);
                            sender = None;
                        }
                    }
                }
                let mut shared = shared.lock().await;
                shared.ttfe.extend(ttfe);
                shared.total.extend(total);
                let r = &mut shared.report;
                r.requests += local.requests;
                r.ok += local.ok;
                r.lost += local.lost;
                r.http_errors += local.http_errors;
                r.failures += local.failures;
                r.events += local.events;
                r.bytes += local.bytes;
                if r.first_failure.is_none() {
                    r.first_failure = local.first_failure;
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let mut shared = std::mem::take(&mut *shared.lock().await);
    let mut report = shared.report;
    report.wall = started.elapsed();
    report.max_open = max_open.load(Ordering::Relaxed);
    report.ttfe = Percentiles::of(&mut shared.ttfe);
    report.total = Percentiles::of(&mut shared.total);
    report
}

async fn connect(url: &Uri) -> Result<http1::SendRequest<Full<Bytes>>, String> {
    let host = url.host().ok_or("the URL has no host")?;
    let port = url.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Closes the open-stream count when the stream ends, however it ends.
struct OpenGuard<'a>(&'a AtomicUsize);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn one(
    config: &LoadConfig,
    sender: &mut Option<http1::SendRequest<Full<Bytes>>>,
    ttfe: &mut Vec<Duration>,
    total: &mut Vec<Duration>,
    report: &mut Report,
    open: &AtomicUsize,
    max_open: &AtomicUsize,
) -> Outcome {
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        match connect(&config.url).await {
            Ok(s) => *sender = Some(s),
            Err(e) => return Outcome::Failed(e),
        }
    }
    let send = sender.as_mut().expect("connected");
    if send.ready().await.is_err() {
        *sender = None;
        return Outcome::Failed("the connection closed".into());
    }
    let mut request = Request::post(config.url.path_and_query().map_or("/", |p| p.as_str()))
        .header(
            "host",
            config.url.authority().map_or("localhost", |a| a.as_str()),
        )
        .header("content-type", "application/json");
    if let Some(auth) = &config.authorization {
        request = request.header("authorization", auth);
    }
    for (name, value) in &config.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = request
        .body(Full::new(config.body.clone()))
        .expect("a valid request");
    let started = Instant::now();
    let response = match send.send_request(request).await {
        Ok(response) => response,
        Err(e) => return Outcome::Failed(format!("request: {e}")),
    };
    let now_open = open.fetch_add(1, Ordering::Relaxed) + 1;
    let _guard = OpenGuard(open);
    max_open.fetch_max(now_open, Ordering::Relaxed);
    let status = response.status();
    let mut body = response.into_body();
    let mut check = StreamCheck::default();
    let mut first = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    report.bytes += data.len() as u64;
                    check.push(&data);
                    if first.is_none() && check.has_event() {
                        first = Some(started.elapsed());
                        if let Some(hold) = config.hold {
                            tokio::time::sleep(hold).await;
                            report.events += check.events;
                            ttfe.push(first.unwrap_or_default());
                            total.push(started.elapsed());
                            // Leave: the connection goes with the unread stream.
                            return Outcome::Ok;
                        }
                    }
                }
            }
            Err(e) => return Outcome::Failed(format!("body: {e}")),
        }
    }
    if !status.is_success() {
        return Outcome::Http(status.as_u16());
    }
    report.events += check.events;
    ttfe.push(first.unwrap_or_else(|| started.elapsed()));
    total.push(started.elapsed());
    let complete = check.done
        && !check.error_event
        && config
            .expect_content
            .is_none_or(|n| n == check.content_chunks);
    if complete { Outcome::Ok } else { Outcome::Lost }
}

#[cfg(test)]
mod tests {
    use super::parse_header;

    #[test]
    fn header_lines_parse_like_curls() {
        assert_eq!(
            parse_header("x-portkey-custom-host: http://127.0.0.1:8080/v1"),
            Ok((
                "x-portkey-custom-host".to_owned(),
                "http://127.0.0.1:8080/v1".to_owned()
            ))
        );
        assert_eq!(
            parse_header("X-Empty:"),
            Ok(("X-Empty".to_owned(), String::new()))
        );
        for bad in ["no colon", ": no name", "bad name: v", "x-nl: a\nb"] {
            assert!(parse_header(bad).is_err(), "{bad:?}");
        }
    }
}
