//! A replay server: the crate's full layer stack in front of an upstream that replays the
//! captured provider streams in `tests/fixtures`, split into uneven chunks. It lets real
//! clients (the official OpenAI SDKs) read what every dialect produces.
//!
//! ```sh
//! cargo run --example replay -- --listen 127.0.0.1:8091
//! curl -N http://127.0.0.1:8091/v1/chat/completions -d '{"model":"anthropic","stream":true}'
//! ```
//!
//! The model picks the replay: `PROVIDER` (its default fixture for the endpoint, e.g.
//! `anthropic`, `gemini`, `cohere`, `ollama`, `groq`, `mistral`, `deepseek`, `openrouter`,
//! `vllm`, `openai`, `llamacpp`; `anthropic-tools`, `gemini-tools`, `cohere-tools` for their
//! tool-calling captures) or `PROVIDER/FIXTURE` (`anthropic/tool_use`). The dialect is
//! `AnyDialect::for_provider(PROVIDER, endpoint)`. Endpoints: `/v1/chat/completions`,
//! `/v1/completions`, `/v1/responses`, `/v1/audio/speech`, `/v1/audio/transcriptions`.
//!
//! Under `/raw/PROVIDER/` it is an upstream instead: the provider's fixture exactly as the
//! provider streams it, no layers, at the provider's own API paths, for the example proxy to
//! stand in front of (`ANTHROPIC_BASE_URL=http://127.0.0.1:8091/raw/anthropic/v1`).

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::path::PathBuf;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::error_event::ErrorEventLayer;
use tower_llm_stream::observe::{ObserveLayer, StreamLabels};
use tower_llm_stream::provider::{AnyDialect, Endpoint};
use tower_llm_stream::reframe::SseReframeLayer;
use tower_llm_stream::timeout::StreamTimeoutLayer;
use tower_llm_stream::usage::UsageLastChunkLayer;

type ReplayBody = http_body_util::Either<
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
    Full<Bytes>,
>;

fn default_fixture(provider: &str, endpoint: Endpoint) -> Option<&'static str> {
    Some(match (endpoint, provider) {
        (Endpoint::Completions, _) => "openai/completions_legacy_text.sse",
        (Endpoint::Responses, "llamacpp") => "llamacpp/responses_no_sequence_numbers.sse",
        (Endpoint::Responses, _) => "openai/responses_text.sse",
        (Endpoint::Speech, _) => "openai/audio_speech_sse.sse",
        (Endpoint::Transcriptions, _) => "openai/audio_transcription_stream.sse",
        (Endpoint::ChatCompletions, p) => match p {
            "openai" => "openai/chat_text_include_usage.sse",
            "anthropic" => "anthropic/thinking_then_text.sse",
            "gemini" => "gemini/thinking.sse",
            "cohere" => "cohere/text.sse",
            "ollama" => "ollama/generate_stream.ndjson",
            "groq" => "groq/tool_call_x_groq_usage.sse",
            "mistral" => "mistral/thinking_magistral.sse",
            "deepseek" => "deepseek/reasoning_content.sse",
            "openrouter" => "openrouter/reasoning_usage_chunk_with_nonempty_choices.sse",
            "vllm" => "vllm/continuous_usage_stats.sse",
            "llamacpp" => "llamacpp/chat.sse",
            // Tool-calling captures, for clients that declare a tool.
            "anthropic-tools" => "anthropic/tool_use.sse",
            "gemini-tools" => "gemini/function_call.sse",
            "cohere-tools" => "cohere/tool_call.sse",
            _ => return None,
        },
    })
}

/// The `model` of a JSON body, or of a multipart form's `model` field.
fn model_of(body: &[u8]) -> Option<String> {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        return json["model"].as_str().map(str::to_owned);
    }
    let text = String::from_utf8_lossy(body);
    let at = text.find("name=\"model\"")?;
    let value = text[at..].split("\r\n\r\n").nth(1)?;
    Some(value.split("\r\n").next()?.trim().to_owned())
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Uneven chunks: no chunk is a whole event.
fn uneven(raw: Bytes) -> Vec<Result<Frame<Bytes>, Infallible>> {
    let mut frames = Vec::new();
    let (mut at, mut size) = (0, 1);
    while at < raw.len() {
        let end = (at + size).min(raw.len());
        frames.push(Ok(Frame::data(raw.slice(at..end))));
        at = end;
        size = size % 97 + 13;
    }
    frames
}

fn error(status: StatusCode, message: &str) -> Response<ReplayBody> {
    let body = tower_llm_stream::standard::error_json(
        "invalid_request_error",
        "replay_not_found",
        message,
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(http_body_util::Either::Right(Full::new(body)))
        .expect("a valid response")
}

/// `/raw/PROVIDER/...`: the provider's own API path (`/v1/messages`, `/v1beta/models/m:streamGenerateContent`,
/// `/v2/chat`, `/api/chat`, or an OpenAI path), answered with the provider's fixture for that
/// endpoint as the provider sent it: no layers. Point a proxy's `P_BASE_URL` here.
fn raw_route(path: &str) -> Option<(&str, Endpoint)> {
    let rest = path.strip_prefix("/raw/")?;
    let provider = rest.split('/').next()?;
    let api_path = &rest[provider.len()..];
    let endpoint = Endpoint::from_path(api_path).or_else(|| {
        (api_path.ends_with("/messages")
            || api_path.contains(":streamGenerateContent")
            || api_path.ends_with("/chat"))
        .then_some(Endpoint::ChatCompletions)
    })?;
    Some((provider, endpoint))
}

/// The raw upstream (no layers).
async fn raw(request: Request<Incoming>) -> Response<ReplayBody> {
    let Some((provider, endpoint)) = raw_route(request.uri().path()) else {
        return error(StatusCode::NOT_FOUND, "no such raw route");
    };
    let provider = provider.to_owned();
    let _ = request.into_body().collect().await;
    let Some(fixture) = default_fixture(&provider, endpoint) else {
        return error(StatusCode::NOT_FOUND, "no fixture for this provider");
    };
    let Ok(raw) = std::fs::read(fixtures().join(fixture)) else {
        return error(StatusCode::NOT_FOUND, "fixture missing");
    };
    let content_type = if fixture.ends_with(".ndjson") {
        "application/x-ndjson"
    } else {
        "text/event-stream"
    };
    Response::builder()
        .header("content-type", content_type)
        .body(http_body_util::Either::Left(StreamBody::new(
            futures_util::stream::iter(uneven(Bytes::from(raw))),
        )))
        .expect("a valid response")
}

async fn replay(request: Request<Incoming>) -> Result<Response<ReplayBody>, Infallible> {
    let Some(endpoint) = Endpoint::from_path(request.uri().path()) else {
        return Ok(error(StatusCode::NOT_FOUND, "unknown endpoint"));
    };
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let model = model_of(&body).unwrap_or_else(|| "openai".to_owned());
    let (provider, fixture) = match model.split_once('/') {
        Some((provider, name)) => {
            let ext = if provider == "ollama" {
                "ndjson"
            } else {
                "sse"
            };
            (
                provider.to_owned(),
                Some(format!("{provider}/{name}.{ext}")),
            )
        }
        None => (
            model.clone(),
            default_fixture(&model, endpoint).map(str::to_owned),
        ),
    };
    let Some(fixture) = fixture else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            &format!("no replay for model {model:?}"),
        ));
    };
    let path = fixtures().join(&fixture);
    let Ok(raw) = std::fs::read(&path) else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            &format!("no fixture {fixture}"),
        ));
    };
    let frames = uneven(Bytes::from(raw));
    let content_type = if fixture.ends_with(".ndjson") {
        "application/x-ndjson"
    } else {
        "text/event-stream"
    };
    let mut response = Response::builder()
        .header("content-type", content_type)
        .body(http_body_util::Either::Left(StreamBody::new(
            futures_util::stream::iter(frames),
        )))
        .expect("a valid response");
    // The dialect of whoever recorded the fixture (its folder), not of the model asked for.
    let recorded_by = fixture.split('/').next().unwrap_or(&provider);
    response
        .extensions_mut()
        .insert(AnyDialect::for_provider(recorded_by, endpoint));
    response
        .extensions_mut()
        .insert(StreamLabels::new(provider, model));
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:8091".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let service = ServiceBuilder::new()
        .layer(ObserveLayer::new())
        .layer(ErrorEventLayer::new())
        .layer(UsageLastChunkLayer::new())
        .layer(StreamTimeoutLayer::new())
        .layer(SseReframeLayer::new().dialect(AnyDialect::default()))
        .service_fn(replay);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("replay server on http://{listen}");
    loop {
        let (stream, _) = listener.accept().await?;
        let layered = service.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let layered = layered.clone();
            async move {
                if request.uri().path().starts_with("/raw/") {
                    return Ok::<_, Infallible>(raw(request).await.map(BodyExt::boxed_unsync));
                }
                let response = layered.oneshot(request).await?;
                Ok(response.map(BodyExt::boxed_unsync))
            }
        });
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
