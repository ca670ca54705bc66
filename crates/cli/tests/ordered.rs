//! Ordered delivery from the Subscriptions API to a real HTTP sink: a subscription with
//! `"delivery": {"ordered": true}` gets the events of one source in the order `spindle up`
//! accepted them, across a sink outage (503s) and a SIGKILL + restart of the app in between,
//! while a second source is delivered independently.

use std::convert::Infallible;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudevent::{Event, http as binding};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;

const MANIFEST: &str = r#"spindle_manifest_version = 1
[application]
name = "ordered"

[[trigger.http]]
route = "/events"
"#;

/// An HTTP sink answering `503` while `down`, else `200`, recording `(source, id)` of what
/// it took, in arrival order.
async fn sink(down: Arc<AtomicBool>, received: Arc<Mutex<Vec<(String, String)>>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (down, received) = (down.clone(), received.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<_>| {
                    let mut response = http::Response::new(Full::new(Bytes::new()));
                    if down.load(Ordering::SeqCst) {
                        *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                    } else {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        received
                            .lock()
                            .unwrap()
                            .push((header("ce-source"), header("ce-id")));
                    }
                    async { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

fn event(source: &str, n: usize) -> Event {
    Event::builder()
        .id(format!("{n:03}"))
        .source(source)
        .ty("com.example.step")
        .build()
        .unwrap()
}

async fn post_all(url: &str, source: &str, range: std::ops::Range<usize>) {
    let client = reqwest::Client::new();
    for n in range {
        let encoded = binding::encode_binary(&event(source, n));
        let r = client
            .post(url)
            .headers(encoded.headers)
            .body(encoded.body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "event {n} of {source}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_delivery_survives_a_sink_outage_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spindle.toml"), MANIFEST).unwrap();
    let down = Arc::new(AtomicBool::new(true));
    let received = Arc::new(Mutex::new(Vec::new()));
    let port = sink(down.clone(), received.clone()).await;

    let mut first = running::up(dir.path(), Stdio::inherit());
    let sub = running::create_subscription(
        &first.admin,
        serde_json::json!({
            "protocol": "HTTP",
            "sink": format!("http://127.0.0.1:{port}/hook"),
            "delivery": {"ordered": true, "maxInFlight": 8,
                         "initialBackoffMs": 50, "maxBackoffMs": 400, "maxAttempts": null}
        }),
    )
    .await;
    assert_eq!(sub["delivery"]["ordered"], true, "{sub}");

    // While the sink answers 503: half of each source's events, then SIGKILL.
    let url = format!("{}/events", first.http);
    tokio::join!(post_all(&url, "/a", 0..20), post_all(&url, "/b", 0..20));
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let second = running::up(dir.path(), Stdio::inherit());
    let url = format!("{}/events", second.http);
    tokio::join!(post_all(&url, "/a", 20..40), post_all(&url, "/b", 20..40));
    // The sink comes back after a while of 503s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    down.store(false, Ordering::SeqCst);

    let deadline = Instant::now() + Duration::from_secs(90);
    while received.lock().unwrap().len() < 80 {
        assert!(
            Instant::now() < deadline,
            "only {} of 80 delivered",
            received.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let received = received.lock().unwrap().clone();
    for source in ["/a", "/b"] {
        let ids: Vec<&str> = received
            .iter()
            .filter(|(s, _)| s == source)
            .map(|(_, id)| id.as_str())
            .collect();
        let expected: Vec<String> = (0..40).map(|n| format!("{n:03}")).collect();
        assert_eq!(ids, expected, "source {source} in acceptance order");
    }
}
