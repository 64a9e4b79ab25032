//! A scripted upstream body: data, pauses, failures, trailers, stalls, on tokio's clock.
#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// One step of a [`ScriptBody`].
#[derive(Clone, Debug)]
pub enum Step {
    Data(Bytes),
    Wait(Duration),
    Fail(&'static str),
    Trailers(HeaderMap),
    /// Never yields again.
    Stall,
}

/// A step that yields `text` as one data frame.
pub fn data(text: impl Into<Bytes>) -> Step {
    Step::Data(text.into())
}

/// A step that waits `secs` seconds (of tokio's clock).
pub fn wait_secs(secs: f64) -> Step {
    Step::Wait(Duration::from_secs_f64(secs))
}

/// A body that plays its steps in order.
pub struct ScriptBody {
    steps: VecDeque<Step>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Set when the body is dropped.
    pub dropped: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl ScriptBody {
    /// A body of these steps.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        ScriptBody {
            steps: steps.into_iter().collect(),
            sleep: None,
            dropped: None,
        }
    }
}

impl Drop for ScriptBody {
    fn drop(&mut self) {
        if let Some(flag) = &self.dropped {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl Body for ScriptBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            match self.steps.pop_front() {
                None => return Poll::Ready(None),
                Some(Step::Data(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Some(Step::Wait(duration)) => {
                    self.sleep = Some(Box::pin(tokio::time::sleep(duration)))
                }
                Some(Step::Fail(message)) => {
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        message,
                    ))));
                }
                Some(Step::Trailers(trailers)) => {
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Some(Step::Stall) => {
                    self.steps.push_front(Step::Stall);
                    return Poll::Pending;
                }
            }
        }
    }
}

/// An upstream service answering every request with `content_type` and the script.
pub fn upstream(
    content_type: &'static str,
    steps: Vec<Step>,
) -> impl tower::Service<
    Request<()>,
    Response = Response<ScriptBody>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<ScriptBody>, Infallible>>,
> + Clone {
    tower::service_fn(move |_req: Request<()>| {
        let response = Response::builder()
            .header("content-type", content_type)
            .header("content-length", "12345")
            .body(ScriptBody::new(steps.clone()))
            .unwrap();
        std::future::ready(Ok(response))
    })
}

/// An SSE upstream.
pub fn sse_upstream(
    steps: Vec<Step>,
) -> impl tower::Service<
    Request<()>,
    Response = Response<ScriptBody>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<ScriptBody>, Infallible>>,
> + Clone {
    upstream("text/event-stream", steps)
}

/// Every frame of a body: data as text, trailers as "<trailers>", errors as "ERR: …".
pub async fn frames<B>(body: B) -> Vec<String>
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    use http_body_util::BodyExt;
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => out.push(String::from_utf8_lossy(&data).into_owned()),
                Err(_) => out.push("<trailers>".to_owned()),
            },
            Err(err) => out.push(format!("ERR: {err}")),
        }
    }
    out
}
