//! The built-in `demo` provider: an in-process, OpenAI-compatible upstream that streams a
//! deterministic reply in real time, so the proxy works on a fresh machine with no key and no
//! network. Its stream goes through the same layers as a real provider's.
//!
//! Models: `demo/echo` (a word every 30 ms), `demo/slow` (every 250 ms: time to press Stop),
//! `demo/instant` (no pacing), `demo/broken` (the connection drops after a few words, as real
//! upstreams do). Chat completions, text completions and the Responses API, streamed or not;
//! `max_tokens` / `max_completion_tokens` / `max_output_tokens` cut the reply (`length`,
//! `incomplete`).

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Sleep;
use tower_llm_stream::BoxError;
use tower_llm_stream::provider::Endpoint;
use tower_llm_stream::provider::{Provider, ProviderKind};

/// The demo's host: `.invalid` never resolves, so nothing can reach a real server by it.
pub const HOST: &str = "demo.invalid";

/// The demo's models and their pace (time between words).
pub const MODELS: [(&str, Duration); 4] = [
    ("echo", Duration::from_millis(30)),
    ("slow", Duration::from_millis(250)),
    ("instant", Duration::ZERO),
    ("broken", Duration::from_millis(30)),
];

/// Words `demo/broken` sends before its connection drops.
const BROKEN_AFTER: usize = 6;

/// The provider entry that routes `demo/*` here.
pub fn provider() -> Provider {
    Provider::new(
        "demo",
        ProviderKind::OpenAiCompatible,
        &format!("http://{HOST}/v1"),
    )
    .expect("a valid base URL")
    .models(MODELS.map(|(name, _)| name))
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// Text of a message `content` (a string or text parts).
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// What the user said last, and the prompt's size in words, for each endpoint's body shape.
fn prompt(endpoint: Endpoint, body: &Value) -> (String, usize) {
    match endpoint {
        Endpoint::Completions => {
            let text = match &body["prompt"] {
                Value::Array(items) => items.first().map(text_of).unwrap_or_default(),
                other => text_of(other),
            };
            let size = words(&text);
            (text, size)
        }
        Endpoint::Responses => {
            let mut size = words(body["instructions"].as_str().unwrap_or(""));
            let last = match &body["input"] {
                Value::String(s) => {
                    size += words(s);
                    s.clone()
                }
                Value::Array(items) => {
                    let mut last = String::new();
                    for item in items {
                        let text = text_of(&item["content"]);
                        size += words(&text);
                        if item["role"] == "user" {
                            last = text;
                        }
                    }
                    last
                }
                _ => String::new(),
            };
            (last, size)
        }
        _ => {
            let mut size = 0;
            let mut last = String::new();
            for message in body["messages"].as_array().into_iter().flatten() {
                let text = text_of(&message["content"]);
                size += words(&text);
                if message["role"] == "user" {
                    last = text;
                }
            }
            (last, size)
        }
    }
}

/// The reply: deterministic for a given prompt.
pub fn reply(prompt: &str) -> Vec<String> {
    let mut said: String = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if said.chars().count() > 60 {
        said = said.chars().take(60).collect::<String>() + "…";
    }
    if said.is_empty() {
        said = "nothing".to_owned();
    }
    let text = format!(
        "Hello from the demo provider of tower-llm-stream! You said: \u{201c}{said}\u{201d}. \
         Each word of this reply is its own server-sent event, paced like a real model, and \
         it reaches you through the same layers as a real provider's stream: reframed, usage \
         moved to the last chunk, watched by the timeout, failures turned into error events."
    );
    text.split(' ')
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.to_owned()
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

fn sse(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

fn typed(kind: &str, sequence: &mut u64, mut data: Value) -> Bytes {
    data["type"] = kind.into();
    data["sequence_number"] = (*sequence).into();
    *sequence += 1;
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

/// The stream's frames, in order.
struct Script {
    frames: Vec<Bytes>,
    /// Set for `demo/broken`: fail after this many frames.
    fail_after: Option<usize>,
}

/// Chat completions and text completions differ only in names: the object, and whether the
/// text is a `delta.content` or a `text`.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Chat,
    Text,
}

fn completion(
    shape: Shape,
    model: &str,
    tokens: &[String],
    finish: &str,
    usage: Value,
    stream: bool,
    include_usage: bool,
) -> Result<Script, Value> {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (id, object, whole_object) = match shape {
        Shape::Chat => (
            format!("chatcmpl-demo{n}"),
            "chat.completion.chunk",
            "chat.completion",
        ),
        Shape::Text => (
            format!("cmpl-demo{n}"),
            "text_completion",
            "text_completion",
        ),
    };
    let created = now();
    let choice = |text: Option<String>, first: bool, finish: Value| match shape {
        Shape::Chat if !stream => {
            json!({"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "logprobs": null, "finish_reason": finish})
        }
        Shape::Chat => {
            let mut delta = json!({});
            if first {
                delta["role"] = "assistant".into();
            }
            if let Some(text) = text {
                delta["content"] = text.into();
            }
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
        }
        Shape::Text => {
            json!({"index": 0, "text": text.unwrap_or_default(), "logprobs": null, "finish_reason": finish})
        }
    };
    if !stream {
        return Err(
            json!({"id": id, "object": whole_object, "created": created, "model": model,
                          "choices": [choice(Some(tokens.concat()), true, finish.into())], "usage": usage}),
        );
    }
    let chunk = |choices: Value, usage: Option<&Value>| {
        let mut chunk = json!({"id": id, "object": object, "created": created, "model": model, "choices": choices});
        if let Some(usage) = usage {
            chunk["usage"] = usage.clone();
        }
        sse(&chunk)
    };
    let mut frames = Vec::with_capacity(tokens.len() + 4);
    if shape == Shape::Chat {
        frames.push(chunk(
            json!([choice(Some(String::new()), true, Value::Null)]),
            None,
        ));
    }
    frames.extend(
        tokens
            .iter()
            .map(|t| chunk(json!([choice(Some(t.clone()), false, Value::Null)]), None)),
    );
    frames.push(chunk(json!([choice(None, false, finish.into())]), None));
    if include_usage {
        frames.push(chunk(json!([]), Some(&usage)));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    Ok(Script {
        frames,
        fail_after: None,
    })
}

fn responses(
    model: &str,
    tokens: &[String],
    cut: bool,
    input: u64,
    stream: bool,
) -> Result<Script, Value> {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (id, item_id) = (format!("resp_demo{n}"), format!("msg_demo{n}"));
    let created = now();
    let text: String = tokens.concat();
    let output_tokens = tokens.len() as u64;
    let part = json!({"type": "output_text", "text": text, "annotations": []});
    let item = json!({"id": item_id, "type": "message", "status": if cut { "incomplete" } else { "completed" }, "role": "assistant", "content": [part]});
    let response = |status: &str, output: Value, usage: Value| {
        json!({"id": id, "object": "response", "created_at": created, "status": status,
               "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
               "model": model, "output": output, "usage": usage})
    };
    let usage = json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
                       "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                       "total_tokens": input + output_tokens});
    let terminal = if cut { "incomplete" } else { "completed" };
    if !stream {
        return Err(response(terminal, json!([item]), usage));
    }
    let mut seq = 0;
    let mut frames = vec![
        typed(
            "response.created",
            &mut seq,
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        ),
        typed(
            "response.in_progress",
            &mut seq,
            json!({"response": response("in_progress", json!([]), Value::Null)}),
        ),
        typed(
            "response.output_item.added",
            &mut seq,
            json!({"output_index": 0,
            "item": {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
        ),
        typed(
            "response.content_part.added",
            &mut seq,
            json!({"item_id": item_id, "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}),
        ),
    ];
    for token in tokens {
        frames.push(typed("response.output_text.delta", &mut seq, json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": token, "logprobs": []})));
    }
    frames.push(typed("response.output_text.done", &mut seq, json!({"item_id": item_id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []})));
    frames.push(typed(
        "response.content_part.done",
        &mut seq,
        json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": part}),
    ));
    frames.push(typed(
        "response.output_item.done",
        &mut seq,
        json!({"output_index": 0, "item": item}),
    ));
    frames.push(typed(
        &format!("response.{terminal}"),
        &mut seq,
        json!({"response": response(terminal, json!([item]), usage)}),
    ));
    Ok(Script {
        frames,
        fail_after: None,
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn error(status: StatusCode, message: &str) -> Response<DemoBody> {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "code": "unsupported_endpoint"}});
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(DemoBody::whole(Bytes::from(body.to_string())))
        .expect("a valid response")
}

/// Answers a request the proxy prepared for the demo provider (an OpenAI-compatible body).
pub async fn respond<B>(request: Request<B>) -> Response<DemoBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let Some(endpoint) = Endpoint::from_path(request.uri().path()) else {
        return error(StatusCode::NOT_FOUND, "unknown endpoint");
    };
    let Ok(body) = request.into_body().collect().await else {
        return error(
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        );
    };
    let body: Value = serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null);
    if matches!(endpoint, Endpoint::Speech | Endpoint::Transcriptions) {
        return error(
            StatusCode::BAD_REQUEST,
            "the demo provider offers chat completions, completions and responses, not audio",
        );
    }
    let model = body["model"].as_str().unwrap_or("echo").to_owned();
    let pace = MODELS
        .iter()
        .find(|(name, _)| *name == model)
        .map_or(MODELS[0].1, |(_, pace)| *pace);
    let stream = body["stream"].as_bool() == Some(true);
    let include_usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
    let (said, prompt_tokens) = prompt(endpoint, &body);
    let mut tokens = reply(&said);
    let limit = match endpoint {
        Endpoint::Responses => body["max_output_tokens"].as_u64(),
        _ => body["max_completion_tokens"]
            .as_u64()
            .or(body["max_tokens"].as_u64()),
    };
    let cut = limit.is_some_and(|n| (n as usize) < tokens.len());
    if let Some(n) = limit {
        tokens.truncate(n as usize);
    }
    let finish = if cut { "length" } else { "stop" };
    let completion_tokens = tokens.len() as u64;
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                       "total_tokens": prompt_tokens as u64 + completion_tokens});
    let shape = if endpoint == Endpoint::Completions {
        Shape::Text
    } else {
        Shape::Chat
    };
    let script = match endpoint {
        Endpoint::Responses => responses(&model, &tokens, cut, prompt_tokens as u64, stream),
        _ => completion(shape, &model, &tokens, finish, usage, stream, include_usage),
    };
    match script {
        Err(whole) => Response::builder()
            .header("content-type", "application/json")
            .body(DemoBody::whole(Bytes::from(whole.to_string())))
            .expect("a valid response"),
        Ok(mut script) => {
            if model == "broken" {
                script.fail_after = Some(BROKEN_AFTER);
            }
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(DemoBody::paced(script, pace))
                .expect("a valid response")
        }
    }
}

/// The demo's response body: frames released one per `pace`, with no task of its own.
pub struct DemoBody {
    frames: VecDeque<Bytes>,
    pace: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    fail_after: Option<usize>,
    sent: usize,
}

impl DemoBody {
    fn whole(bytes: Bytes) -> Self {
        DemoBody {
            frames: VecDeque::from([bytes]),
            pace: Duration::ZERO,
            sleep: None,
            fail_after: None,
            sent: 0,
        }
    }

    fn paced(script: Script, pace: Duration) -> Self {
        DemoBody {
            frames: script.frames.into(),
            pace,
            sleep: None,
            fail_after: script.fail_after,
            sent: 0,
        }
    }
}

impl Body for DemoBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(sleep) = this.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
        }
        if this.fail_after == Some(this.sent) {
            this.frames.clear();
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the demo provider dropped the connection (demo/broken)",
            ))));
        }
        let Some(frame) = this.frames.pop_front() else {
            return Poll::Ready(None);
        };
        this.sent += 1;
        if !this.pace.is_zero() {
            let deadline = tokio::time::Instant::now() + this.pace;
            match this.sleep.as_mut() {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.fail_after.is_none_or(|n| n != self.sent)
    }

    fn size_hint(&self) -> SizeHint {
        if self.frames.len() == 1 && self.pace.is_zero() {
            SizeHint::with_exact(self.frames[0].len() as u64)
        } else {
            SizeHint::default()
        }
    }
}
