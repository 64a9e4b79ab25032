//! The whole stack with the OpenAI-compatible dialect, rendered into each client API, on
//! arbitrary upstream bytes (seeded with the OpenAI-compatible chat captures): no panic, and
//! the output is valid UTF-8.
#![no_main]

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use libfuzzer_sys::fuzz_target;
use std::convert::Infallible;
use tower::{Layer, ServiceExt};
use tower_llm_stream::LlmStreamLayer;
use tower_llm_stream::provider::{AnyDialect, ClientApi, Endpoint};

const APIS: [ClientApi; 5] = [
    ClientApi::ChatCompletions,
    ClientApi::Completions,
    ClientApi::Responses,
    ClientApi::AnthropicMessages,
    ClientApi::Gemini,
];

fuzz_target!(|data: &[u8]| {
    // First byte: the client API (`% 5`); second: where the transport cuts the stream.
    if data.len() < 2 || data.len() > 1 << 16 {
        return;
    }
    let api = APIS[data[0] as usize % APIS.len()];
    let stream = &data[2..];
    let cut = (data[1] as usize * 37).min(stream.len());
    let chunks = [
        Bytes::copy_from_slice(&stream[..cut]),
        Bytes::copy_from_slice(&stream[cut..]),
    ];
    let upstream = tower::service_fn(move |_req: Request<()>| {
        let frames = chunks.clone().map(|c| Ok::<_, Infallible>(Frame::data(c)));
        let body = StreamBody::new(futures_util::stream::iter(frames));
        std::future::ready(Ok::<_, Infallible>(
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(body)
                .unwrap(),
        ))
    });
    let service = LlmStreamLayer::new()
        .dialect(AnyDialect::for_provider("openai", Endpoint::ChatCompletions))
        .layer(upstream);
    let mut request = Request::new(());
    request.extensions_mut().insert(api);
    // The timeout layer's timers need a runtime; one per fuzzing thread.
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
    }
    let body = RUNTIME.with(|runtime| {
        runtime.block_on(async move {
            let response = service.oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap().to_bytes()
        })
    });
    assert!(std::str::from_utf8(&body).is_ok(), "the client's stream is UTF-8");
});
