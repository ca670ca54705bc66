//! The Subscriptions API request body. `api::validate::subscription_request` (body → validated
//! `SubscriptionRequest`) is private to the `spindle-api` crate, so this drives the closest
//! public entry point: `api::AdminApi::handle` with `POST /subscriptions` and
//! `Content-Type: application/json`, which runs it, then `Delivery::create_subscription`.
//!
//! The delivery engine is opened (once, in a scratch directory under `$TMPDIR`) with an empty
//! `SinkRegistry`: every sink is refused, so nothing is ever stored, no worker starts and no
//! connection is made. Every body must therefore be refused with `400` and an
//! `application/problem+json` body whose `field` is a JSON pointer; a `201`, a `5xx` or a
//! stored subscription is a bug.
//!
//! Input: the request body (JSON text, raw).
#![no_main]

use std::sync::{Arc, LazyLock};

use api::{AdminApi, AdminConfig};
use bytes::Bytes;
use delivery::{Delivery, SinkRegistry};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use spindle_fuzz::lossy;

struct Admin {
    runtime: tokio::runtime::Runtime,
    delivery: Arc<Delivery>,
    api: AdminApi,
}

static ADMIN: LazyLock<Admin> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let dir =
        std::env::temp_dir().join(format!("spindle-fuzz-subscriptions-{}", std::process::id()));
    let delivery = runtime
        .block_on(Delivery::open(&dir, SinkRegistry::new()))
        .expect("the delivery store opens");
    let delivery = Arc::new(delivery);
    let api = AdminApi::new(delivery.clone(), AdminConfig::default());
    Admin {
        runtime,
        delivery,
        api,
    }
});

fuzz_target!(|data: &[u8]| {
    let admin = &*ADMIN;
    let request = Request::post("/subscriptions")
        .header(header::HOST, "127.0.0.1:3001")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::copy_from_slice(data)))
        .expect("a valid request");
    let (status, content_type, body) = admin.runtime.block_on(async {
        let response = admin.api.handle(request).await;
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a full body")
            .to_bytes();
        (status, content_type, body)
    });
    spindle_fuzz::trace(|| format!("{status}: {}", lossy(&body)));
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "POST /subscriptions with no sink factory must be refused with 400; body: {}",
        lossy(&body)
    );
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "a refusal is a problem document"
    );
    let problem: serde_json::Value = serde_json::from_slice(&body).expect("a JSON problem");
    let field = problem.get("field").and_then(|f| f.as_str());
    assert!(
        field.is_some_and(|f| f.starts_with('/')),
        "a refusal names the field as a JSON pointer: {problem}"
    );
    assert!(
        admin.delivery.subscriptions().is_empty(),
        "a subscription was stored"
    );
});
