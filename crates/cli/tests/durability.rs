//! Nothing accepted is lost: `spindle up` killed with SIGKILL under load, then restarted on
//! the same state directory, still delivers every event it answered `202` for, and keeps its
//! subscriptions. The real binary, real sockets, a real HTTP sink.

use std::collections::HashSet;
use std::convert::Infallible;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudevent::{Data, Event, http as binding};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use running::Up;

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;

const MANIFEST: &str = r#"spindle_manifest_version = 1

[application]
name = "durable"

# No component: this route only takes events in for the subscriptions.
[[trigger.http]]
route = "/events"
"#;

fn up(dir: &Path) -> Up {
    let up = running::up(dir, Stdio::null());
    assert!(
        up.banner.starts_with("Serving durable on "),
        "{}",
        up.banner
    );
    assert!(
        up.listing
            .iter()
            .any(|l| l.ends_with("/events  ->  (subscriptions only) (cloudevents)")),
        "{:?}",
        up.listing
    );
    up
}

/// An HTTP sink on `port` recording the `ce-id` of every event it takes.
async fn sink(port: u16, received: Arc<Mutex<HashSet<String>>>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let received = received.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<_>| {
                    if let Some(id) = req.headers().get("ce-id").and_then(|v| v.to_str().ok()) {
                        received.lock().unwrap().insert(id.to_owned());
                    }
                    async { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::new()))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

fn event(id: &str) -> Event {
    Event::builder()
        .id(id)
        .source("/load")
        .ty("com.example.order.created")
        .data_with_type(
            "application/json",
            Data::json(&serde_json::json!({"id": id})),
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_accepted_event() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spindle.toml"), MANIFEST).unwrap();
    let sink_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = reqwest::Client::new();

    let first = up(dir.path());
    // The sink is down for now: every accepted event waits in the outbox.
    let created = client
        .post(format!("{}/subscriptions", first.admin))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "protocol": "HTTP",
                "sink": format!("http://127.0.0.1:{sink_port}/hook"),
                "filters": [{"prefix": {"type": "com.example."}}],
                "delivery": {"maxBackoffMs": 300, "maxAttempts": null}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let sub: serde_json::Value = serde_json::from_slice(&created.bytes().await.unwrap()).unwrap();

    // Load from 16 producers; SIGKILL once 1500 events were accepted.
    const TOTAL: usize = 3000;
    const KILL_AT: usize = 1500;
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for p in 0..16 {
        let (client, url) = (client.clone(), format!("{}/events", first.http).clone());
        let (accepted, count, dead) = (accepted.clone(), count.clone(), dead.clone());
        producers.push(tokio::spawn(async move {
            for n in 0..TOTAL / 16 {
                if dead.load(Ordering::SeqCst) {
                    return;
                }
                let id = format!("p{p}-{n}");
                let encoded = binding::encode_binary(&event(&id));
                let sent = client
                    .post(&url)
                    .headers(encoded.headers)
                    .body(encoded.body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 202 => {
                        accepted.lock().unwrap().push(id);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return, // the server died: not accepted, nothing promised
                }
            }
        }));
    }
    let mut first = first;
    let started = Instant::now();
    while count.load(Ordering::SeqCst) < KILL_AT {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "load too slow"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.child.kill().unwrap(); // SIGKILL: no shutdown code runs
    dead.store(true, Ordering::SeqCst);
    first.child.wait().unwrap();
    for p in producers {
        p.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= KILL_AT);

    // Restart on the same state directory, and bring the sink up.
    let second = up(dir.path());
    let received = Arc::new(Mutex::new(HashSet::new()));
    sink(sink_port, received.clone()).await;

    let subs = client
        .get(format!("{}/subscriptions", second.admin))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let subs: serde_json::Value = serde_json::from_slice(&subs).unwrap();
    assert_eq!(subs.as_array().unwrap().len(), 1, "{subs}");
    assert_eq!(
        subs[0]["id"], sub["id"],
        "the subscription survived the crash"
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let missing = {
            let received = received.lock().unwrap();
            accepted.iter().filter(|id| !received.contains(*id)).count()
        };
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} accepted events never reached the sink",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
