//! A tiny OpenAI-compatible upstream for the examples: streams a chat completion the way real
//! providers break it (CRLF line endings, events split across writes), so the layers have
//! something to fix. Listens on 127.0.0.1, on a free port.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

const REPLY: &str = "Hello! This reply comes from the demo upstream, one word at a time.";

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-demo\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"demo\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\r\n\r\n"
    )
}

/// The stream, as the writes the upstream makes.
fn writes() -> Vec<String> {
    let mut events = vec![chunk("{\"role\":\"assistant\",\"content\":\"\"}", "null")];
    for (i, word) in REPLY.split(' ').enumerate() {
        let text = if i == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        };
        events.push(chunk(
            &format!("{{\"content\":{}}}", serde_json::Value::from(text)),
            "null",
        ));
    }
    events.push(chunk("{}", "\"stop\""));
    events.push("data: {\"id\":\"chatcmpl-demo\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"demo\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":14,\"total_tokens\":19}}\r\n\r\n".to_owned());
    events.push("data: [DONE]\r\n\r\n".to_owned());
    // Split every event in two writes: no write is a whole event.
    events
        .iter()
        .flat_map(|e| {
            let mid = e.len() / 2;
            [e[..mid].to_owned(), e[mid..].to_owned()]
        })
        .collect()
}

/// Starts the demo upstream; returns its address.
pub async fn spawn() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the demo upstream");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    let stream = futures_util::stream::unfold(
                        writes().into_iter(),
                        |mut writes| async move {
                            let next = writes.next()?;
                            tokio::time::sleep(Duration::from_millis(40)).await;
                            Some((Ok::<_, Infallible>(Frame::data(Bytes::from(next))), writes))
                        },
                    );
                    let response = Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(StreamBody::new(stream))
                        .expect("a valid response");
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}
