//! `LlmStreamLayer` under axum's `route_layer`: the LLM route gets the whole stack, a plain
//! JSON route beside it is left byte for byte as it was.

use axum::body::Body;
use axum::response::Response;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::provider::{AnyDialect, Endpoint};

const ADMIN_ERROR: &str = "{\"detail\": \"not allowed\"}";

async fn chat() -> Response {
    let stream = concat!(
        "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",",
        "\"model\":\"claude\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\r\n\r\n",
        "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,",
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\r\n\r\n",
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(stream))
        .unwrap()
}

async fn refused() -> Response {
    Response::builder()
        .status(StatusCode::TOO_MANY_REQUESTS)
        .header("content-type", "application/json")
        .body(Body::from("{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}"))
        .unwrap()
}

async fn admin() -> Response {
    Response::builder()
        .status(StatusCode::FORBIDDEN)
        .header("content-type", "application/json")
        .body(Body::from(ADMIN_ERROR))
        .unwrap()
}

fn app() -> axum::Router {
    axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/refused", post(refused))
        .route_layer(LlmStreamLayer::new().dialect(AnyDialect::for_provider(
            "anthropic",
            Endpoint::ChatCompletions,
        )))
        .route("/admin", get(admin))
}

async fn call(method: &str, path: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = app().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_llm_route_gets_the_whole_stack() {
    let (status, body) = call("POST", "/v1/chat/completions").await;
    assert_eq!(status, StatusCode::OK);
    // Translated (reframer), then cut off without message_stop (error event, clean end).
    assert!(body.contains("\"delta\":{\"content\":\"Hi\"}"), "{body}");
    assert!(
        body.ends_with("\"code\":\"stream_truncated\",\"message\":\"the upstream stream was cut off: the Anthropic stream ended without message_stop\"}}\n\n"),
        "{body}"
    );
    assert!(!body.contains('\r'));
}

#[tokio::test]
async fn an_llm_route_error_is_normalized() {
    let (status, body) = call("POST", "/v1/refused").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body,
        "{\"error\":{\"type\":\"rate_limit_error\",\"code\":\"rate_limit_error\",\"message\":\"slow down\"}}"
    );
}

#[tokio::test]
async fn a_plain_json_route_beside_the_stack_is_untouched() {
    let (status, body) = call("GET", "/admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, ADMIN_ERROR);
}
