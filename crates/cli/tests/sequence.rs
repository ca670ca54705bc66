//! The sequence extension on an ordered subscription, through `spindle up` and a real HTTP
//! sink: events of one source go in `sequence` order (numerically: 8, 9, 10), whatever order
//! they were accepted in, across a sink outage and a SIGKILL + restart; an event whose
//! sequence skips a number waits the subscription's `sequenceGapMs` for the missing one, then
//! goes anyway.

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
name = "sequenced"

[[trigger.http]]
route = "/events"
"#;

/// An HTTP sink answering `503` while `down`, else `200`, recording each `ce-id` it took with
/// when it took it.
async fn sink(down: Arc<AtomicBool>, received: Arc<Mutex<Vec<(String, Instant)>>>) -> u16 {
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
                        let id = req
                            .headers()
                            .get("ce-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        received.lock().unwrap().push((id, Instant::now()));
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

async fn post(url: &str, sequence: u32) {
    let event = Event::builder()
        .id(format!("s{sequence}"))
        .source("/counter")
        .ty("com.example.tick")
        .extension(
            "sequence",
            cloudevent::AttributeValue::String(sequence.to_string()),
        )
        .build()
        .unwrap();
    let encoded = binding::encode_binary(&event);
    let r = reqwest::Client::new()
        .post(url)
        .headers(encoded.headers)
        .body(encoded.body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "sequence {sequence}");
}

async fn wait_for(received: &Arc<Mutex<Vec<(String, Instant)>>>, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while received.lock().unwrap().len() < count {
        assert!(
            Instant::now() < deadline,
            "only {:?} of {count} delivered",
            received.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ids(received: &Arc<Mutex<Vec<(String, Instant)>>>) -> Vec<String> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_order_holds_across_an_outage_and_a_restart_and_gaps_wait_then_go() {
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
            "delivery": {"ordered": true, "sequenceGapMs": 1500,
                         "initialBackoffMs": 50, "maxBackoffMs": 400, "maxAttempts": null}
        }),
    )
    .await;
    assert_eq!(sub["delivery"]["sequenceGapMs"], 1500, "{sub}");

    // Out of order while the sink is down, with a SIGKILL in between.
    let url = format!("{}/events", first.http);
    post(&url, 10).await;
    post(&url, 8).await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let second = running::up(dir.path(), Stdio::inherit());
    let url = format!("{}/events", second.http);
    post(&url, 9).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    down.store(false, Ordering::SeqCst);
    wait_for(&received, 3).await;
    assert_eq!(ids(&received), ["s8", "s9", "s10"]);

    // 11 never comes: 12 waits for it about 1.5 s, then goes; 13 follows at once.
    let posted = Instant::now();
    post(&url, 12).await;
    post(&url, 13).await;
    wait_for(&received, 5).await;
    assert_eq!(ids(&received)[3..], ["s12", "s13"]);
    let waited = received.lock().unwrap()[3].1 - posted;
    assert!(
        waited >= Duration::from_millis(1200),
        "12 went after {waited:?}, without waiting for 11"
    );
}
