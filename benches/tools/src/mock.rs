//! A mock OpenAI chat upstream for load tests: every request gets the same stream of `events`
//! content chunks (then the finish chunk, the usage chunk and `[DONE]`), one event per write,
//! `interval` apart. The stream is rendered once at startup; a request costs a refcount per
//! event and nothing else, so what a load test measures is whatever sits in front of it.

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::Sleep;

/// The stream every request gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MockConfig {
    /// Content chunks per stream.
    pub events: usize,
    /// Time between events (zero: as fast as the client reads).
    pub interval: Duration,
    /// Time before the first event (the model "thinking").
    pub first_delay: Duration,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            events: 20,
            interval: Duration::ZERO,
            first_delay: Duration::ZERO,
        }
    }
}

/// The frames of one stream: a role chunk, `events` content chunks (`" tok<N>"`), the finish
/// chunk, the usage chunk, `[DONE]`. OpenAI's shape with `include_usage`.
pub fn render(events: usize) -> Vec<Bytes> {
    let chunk = |delta: &str, finish: &str| {
        Bytes::from(format!(
            "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"mock\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        ))
    };
    let mut frames = Vec::with_capacity(events + 4);
    frames.push(chunk("{\"role\":\"assistant\",\"content\":\"\"}", "null"));
    for i in 0..events {
        frames.push(chunk(&format!("{{\"content\":\" tok{i}\"}}"), "null"));
    }
    frames.push(chunk("{}", "\"stop\""));
    frames.push(Bytes::from(format!(
        "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"mock\",\"choices\":[],\"usage\":{{\"prompt_tokens\":9,\"completion_tokens\":{events},\"total_tokens\":{}}}}}\n\n",
        events + 9
    )));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

/// One response body: the shared frames, paced.
pub struct MockBody {
    frames: Arc<[Bytes]>,
    next: usize,
    interval: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl MockBody {
    pub fn new(frames: Arc<[Bytes]>, config: &MockConfig) -> Self {
        let sleep = (!config.first_delay.is_zero())
            .then(|| Box::pin(tokio::time::sleep(config.first_delay)));
        MockBody {
            frames,
            next: 0,
            interval: config.interval,
            sleep,
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if let Some(sleep) = this.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
        }
        let Some(frame) = this.frames.get(this.next).cloned() else {
            return Poll::Ready(None);
        };
        this.next += 1;
        if !this.interval.is_zero() && this.next < this.frames.len() {
            let deadline = tokio::time::Instant::now() + this.interval;
            match this.sleep.as_mut() {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        } else {
            this.sleep = None;
        }
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.frames.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Serves the mock on `listener` forever (HTTP/1.1 and HTTP/2).
pub async fn serve(listener: TcpListener, config: MockConfig) {
    let frames: Arc<[Bytes]> = render(config.events).into();
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let frames = frames.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_request: Request<Incoming>| {
                let body = MockBody::new(frames.clone(), &config);
                async move {
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", "text/event-stream")
                            .body(body)
                            .expect("a valid response"),
                    )
                }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
