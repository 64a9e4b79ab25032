//! Choosing the dialect: by provider name, per request and per response.

mod common;

use common::script::{ScriptBody, data, frames};
use http::{Request, Response};
use std::convert::Infallible;
use tower::{ServiceBuilder, ServiceExt};
use tower_llm_stream::provider::{AnyDialect, Endpoint};
use tower_llm_stream::reframe::SseReframeLayer;

const ANTHROPIC: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude\"}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

#[test]
fn provider_names_and_paths() {
    assert!(matches!(
        AnyDialect::for_provider("Anthropic", Endpoint::ChatCompletions),
        AnyDialect::Anthropic(_)
    ));
    assert!(matches!(
        AnyDialect::for_provider("google", Endpoint::ChatCompletions),
        AnyDialect::Gemini(_)
    ));
    assert!(matches!(
        AnyDialect::for_provider("cohere", Endpoint::ChatCompletions),
        AnyDialect::Cohere(_)
    ));
    assert!(matches!(
        AnyDialect::for_provider("ollama", Endpoint::ChatCompletions),
        AnyDialect::Ollama(_)
    ));
    assert!(matches!(
        AnyDialect::for_provider("groq", Endpoint::ChatCompletions),
        AnyDialect::OpenAi(_)
    ));
    assert!(matches!(
        AnyDialect::for_provider("openai", Endpoint::Responses),
        AnyDialect::Responses(_)
    ));
    assert_eq!(
        Endpoint::from_path("/v1/chat/completions"),
        Some(Endpoint::ChatCompletions)
    );
    assert_eq!(
        Endpoint::from_path("/openai/v1/audio/transcriptions/"),
        Some(Endpoint::Transcriptions)
    );
    assert_eq!(Endpoint::from_path("/v1/models"), None);
}

#[tokio::test]
async fn a_response_extension_names_the_dialect() {
    let upstream = tower::service_fn(|_req: Request<()>| async {
        let mut response = Response::builder()
            .header("content-type", "text/event-stream")
            .body(ScriptBody::new([data(ANTHROPIC)]))
            .unwrap();
        response.extensions_mut().insert(AnyDialect::for_provider(
            "anthropic",
            Endpoint::ChatCompletions,
        ));
        Ok::<_, Infallible>(response)
    });
    let service = ServiceBuilder::new()
        .layer(SseReframeLayer::new().dialect(AnyDialect::default()))
        .service(upstream);
    let out = frames(service.oneshot(Request::new(())).await.unwrap().into_body()).await;
    assert_eq!(out.len(), 3, "{out:?}"); // role chunk, last chunk, [DONE]
    assert!(out[0].contains("chat.completion.chunk") && out[0].contains("\"model\":\"claude\""));
}

#[tokio::test]
async fn a_request_extension_names_the_dialect() {
    let service = ServiceBuilder::new()
        .layer(SseReframeLayer::new().dialect(AnyDialect::default()))
        .service(common::script::sse_upstream(vec![data(ANTHROPIC)]));
    let mut request = Request::new(());
    request.extensions_mut().insert(AnyDialect::for_provider(
        "anthropic",
        Endpoint::ChatCompletions,
    ));
    let out = frames(service.clone().oneshot(request).await.unwrap().into_body()).await;
    assert_eq!(out.len(), 3, "{out:?}");
    // Without it, the layer's (OpenAI-compatible) dialect sees no [DONE]: cut off.
    let out = frames(service.oneshot(Request::new(())).await.unwrap().into_body()).await;
    assert!(out.last().unwrap().starts_with("ERR"), "{out:?}");
}
