//! The wasi-http executor: a plain proxy-world component serving requests, one fresh instance
//! each, under the same limits.

mod support;

use bytes::Bytes;
use engine::{CollectingPublisher, ComponentConfig, ComponentSource, HandleError, HttpHandler};
use http_body_util::{BodyExt, Full};
use std::sync::Arc;
use std::time::Duration;
use support::{engine, guest, relaxed};

fn load(config: ComponentConfig) -> HttpHandler {
    engine()
        .load_http(
            "guest_http_hello",
            ComponentSource::Path(guest("guest_http_hello")),
            config,
        )
        .unwrap()
}

fn request(path: &str, body: &'static str) -> hyper::Request<Full<Bytes>> {
    hyper::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

async fn body_text(response: hyper::Response<engine::HttpBody>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_requests_and_survives_bad_ones() {
    let h = load(relaxed());
    let response = h
        .handle(
            request("/greet?x=1", "12345"),
            Arc::new(CollectingPublisher::default()),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(body_text(response).await, "hello /greet?x=1 (5 bytes)");

    let err = h
        .handle(
            request("/panic", ""),
            Arc::new(CollectingPublisher::default()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HandleError::Trap { .. }), "{err:?}");
    let response = h
        .handle(
            request("/again", ""),
            Arc::new(CollectingPublisher::default()),
        )
        .await
        .unwrap();
    assert_eq!(body_text(response).await, "hello /again (0 bytes)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_request_times_out() {
    let mut config = relaxed();
    config.limits.deadline = Duration::from_millis(300);
    let h = load(config);
    let err = h
        .handle(
            request("/loop", ""),
            Arc::new(CollectingPublisher::default()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HandleError::Timeout { .. }), "{err:?}");
}
