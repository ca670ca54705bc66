//! The HTTP trigger over real loopback sockets, with native handlers standing in for
//! components (the Wasm engine's own tests cover running real components).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cloudevent::{Data, Event, http as binding};
use delivery::{Delivery, SinkRegistry};
use runtime::http::{HttpConfig, HttpRoute, HttpTrigger, RouteTarget, WebhookConfig};
use runtime::{BoxFuture, ComponentEntry, Dispatcher, Handler, HandlerError, Publish, Router};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A native handler whose behaviour is chosen by the event's `type`.
struct Scripted {
    calls: AtomicUsize,
}

impl Handler for Scripted {
    fn handle(
        &self,
        event: Event,
        outputs: Arc<dyn Publish>,
    ) -> BoxFuture<'_, Result<Vec<Event>, HandlerError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let reply = |n: usize| -> Event {
                let mut e = event.clone();
                e.set_id(format!("{}-reply-{n}", event.id())).unwrap();
                e
            };
            match event.ty() {
                "none" => Ok(vec![]),
                "fanout" => Ok((0..3).map(reply).collect()),
                "transient" => Err(HandlerError::Transient("database down".into())),
                "permanent" => Err(HandlerError::Permanent("order total is negative".into())),
                "busy" => Err(HandlerError::Busy),
                "trap" => Err(HandlerError::Trap("wasm trap: unreachable".into())),
                "slow" => {
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    Ok(vec![reply(0)])
                }
                "publish" => {
                    outputs
                        .publish("next", reply(0))
                        .map_err(|e| HandlerError::Permanent(e.to_string()))?;
                    Ok(vec![])
                }
                _ => Ok(vec![reply(0)]),
            }
        })
    }
}

struct App {
    url: String,
    calls: Arc<Scripted>,
    delivery: Arc<Delivery>,
    _state: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn start(outputs: BTreeMap<String, manifest::Output>, config: HttpConfig) -> App {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let handler = Arc::new(Scripted {
        calls: AtomicUsize::new(0),
    });
    let state = tempfile::tempdir().unwrap();
    let delivery = Arc::new(
        Delivery::open(state.path(), SinkRegistry::with_defaults())
            .await
            .unwrap(),
    );
    for (name, output) in &outputs {
        let sub = runtime::outputs::subscription("orders", name, output);
        delivery.put_subscription(sub).await.unwrap();
    }
    let mut components = HashMap::new();
    components.insert(
        "orders".to_owned(),
        ComponentEntry {
            handler: handler.clone(),
            outputs: Arc::new(outputs.keys().cloned().collect()),
            max_concurrency: 100,
        },
    );
    let routes = vec![
        HttpRoute {
            route: manifest::Route::parse("/orders/...").unwrap(),
            target: RouteTarget::CloudEvents {
                component: Some("orders".into()),
                dedup: None,
            },
        },
        HttpRoute {
            route: manifest::Route::parse("/ingress").unwrap(),
            target: RouteTarget::CloudEvents {
                component: None,
                dedup: None,
            },
        },
    ];
    let trigger = Arc::new(HttpTrigger::new(
        routes,
        Dispatcher::new(components, Router::new(delivery.clone())),
        config,
        client,
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/orders", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel();
    let done = tokio::spawn(async move {
        trigger
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    App {
        url,
        calls: handler,
        delivery,
        _state: state,
        stop: Some(stop),
        done,
    }
}

fn event(ty: &str) -> Event {
    Event::builder()
        .id("e1")
        .source("/test")
        .ty(ty)
        .data_with_type("application/json", Data::json(&serde_json::json!({"n": 1})))
        .build()
        .unwrap()
}

async fn post(url: &str, encoded: binding::Encoded, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .headers(encoded.headers)
        .body(encoded.body);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn reply_events(response: reqwest::Response) -> (binding::Mode, Vec<Event>) {
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    let message = binding::decode(&headers, body).unwrap();
    (message.mode(), message.into_events())
}

#[tokio::test]
async fn replies_mirror_the_request_mode() {
    let app = start(BTreeMap::new(), HttpConfig::default()).await;
    for mode in [
        binding::Mode::Binary,
        binding::Mode::Structured,
        binding::Mode::Batch,
    ] {
        let response = post(&app.url, binding::encode(&event("echo"), mode), &[]).await;
        assert_eq!(response.status(), 200, "{mode}");
        let (reply_mode, events) = reply_events(response).await;
        assert_eq!(reply_mode, mode);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id(), "e1-reply-0");
        assert_eq!(events[0].data(), event("echo").data());
    }
}

#[tokio::test]
async fn a_batch_runs_the_handler_once_per_event() {
    let app = start(BTreeMap::new(), HttpConfig::default()).await;
    let mut events = vec![event("echo"), event("echo"), event("none")];
    events[1].set_id("e2").unwrap();
    let response = post(&app.url, binding::encode_batch(&events), &[]).await;
    assert_eq!(response.status(), 200);
    let (mode, replies) = reply_events(response).await;
    assert_eq!(mode, binding::Mode::Batch);
    assert_eq!(
        replies.iter().map(Event::id).collect::<Vec<_>>(),
        ["e1-reply-0", "e2-reply-0"]
    );
    assert_eq!(app.calls.calls.load(Ordering::SeqCst), 3);
}

/// A batch's events run side by side (up to the component's cap), and the reply keeps their
/// order: six 800 ms handlers take about one handler's time, not six.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_its_events_concurrently_and_replies_in_order() {
    let app = start(BTreeMap::new(), HttpConfig::default()).await;
    let events: Vec<Event> = (0..6)
        .map(|i| {
            let mut e = event("slow");
            e.set_id(format!("s{i}")).unwrap();
            e
        })
        .collect();
    let started = std::time::Instant::now();
    let response = post(&app.url, binding::encode_batch(&events), &[]).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    let (mode, replies) = reply_events(response).await;
    assert_eq!(mode, binding::Mode::Batch);
    let ids: Vec<&str> = replies.iter().map(Event::id).collect();
    assert_eq!(
        ids,
        [
            "s0-reply-0",
            "s1-reply-0",
            "s2-reply-0",
            "s3-reply-0",
            "s4-reply-0",
            "s5-reply-0"
        ]
    );
    assert!(
        elapsed < Duration::from_millis(3 * 800),
        "six 800 ms events took {elapsed:?}: not run side by side"
    );
}

#[tokio::test]
async fn no_result_is_204_and_several_are_a_batch_only_when_accepted() {
    let app = start(BTreeMap::new(), HttpConfig::default()).await;
    let response = post(&app.url, binding::encode_binary(&event("none")), &[]).await;
    assert_eq!(response.status(), 204);

    let response = post(
        &app.url,
        binding::encode_binary(&event("fanout")),
        &[("accept", "application/cloudevents-batch+json")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let (mode, replies) = reply_events(response).await;
    assert_eq!((mode, replies.len()), (binding::Mode::Batch, 3));

    let response = post(&app.url, binding::encode_binary(&event("fanout")), &[]).await;
    let (mode, replies) = reply_events(response).await;
    assert_eq!((mode, replies.len()), (binding::Mode::Binary, 1));
}

#[tokio::test]
async fn statuses_for_every_failure() {
    let app = start(
        BTreeMap::new(),
        HttpConfig {
            max_body_size: 64 * 1024,
            ..HttpConfig::default()
        },
    )
    .await;
    let client = reqwest::Client::new();

    let r = post(&app.url, binding::encode_binary(&event("transient")), &[]).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let r = post(&app.url, binding::encode_binary(&event("busy")), &[]).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let r = post(&app.url, binding::encode_binary(&event("permanent")), &[]).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("order total is negative"));
    let r = post(&app.url, binding::encode_binary(&event("trap")), &[]).await;
    assert_eq!(r.status(), 500);

    // Invalid event: 400 with a problem naming the attribute.
    let r = client
        .post(&app.url)
        .header("content-type", "application/cloudevents+json")
        .body(r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad-Name":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["problems"][0]["attribute"], "Bad-Name");

    let r = client
        .post(&app.url)
        .header("content-type", "application/cloudevents+cbor")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = client
        .post(&app.url)
        .body(vec![b'x'; 70 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = client.get(&app.url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = client
        .post(format!(
            "{}/../../nope",
            app.url.replace("/orders", "/other")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .post(&app.url)
        .body("not an event")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn webhook_handshake_and_auth() {
    let config = HttpConfig {
        webhook: WebhookConfig {
            allowed_origins: vec!["*.example.com".into()],
            allowed_rate: Some(100),
            auth_token: Some(http_server::BearerToken::new("s3cret")),
            egress: Default::default(),
        },
        ..HttpConfig::default()
    };
    let app = start(BTreeMap::new(), config).await;
    let client = reqwest::Client::new();
    // The handshake obeys the token like every other request: without it, an anonymous
    // OPTIONS could make the host send validation requests for anyone.
    let r = client
        .request(reqwest::Method::OPTIONS, &app.url)
        .header("WebHook-Request-Origin", "events.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .request(reqwest::Method::OPTIONS, &app.url)
        .header("WebHook-Request-Origin", "events.example.com")
        .header("WebHook-Request-Rate", "120")
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["webhook-allowed-origin"], "events.example.com");
    assert_eq!(r.headers()["webhook-allowed-rate"], "100");
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));

    let r = client
        .request(reqwest::Method::OPTIONS, &app.url)
        .header("WebHook-Request-Origin", "evil.org")
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("webhook-allowed-origin"));

    let r = post(&app.url, binding::encode_binary(&event("echo")), &[]).await;
    assert_eq!(r.status(), 401);
    let r = post(
        &app.url,
        binding::encode_binary(&event("echo")),
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = post(
        &app.url,
        binding::encode_binary(&event("echo")),
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = post(
        &format!("{}?access_token=s3cret", app.url),
        binding::encode_binary(&event("echo")),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    // Webhook spec 3.2: "the delivery target SHOULD include the header `Cache-Control:
    // private`" in a successful answer to a request with the token in its query.
    assert_eq!(r.headers()["cache-control"], "private");
}

#[tokio::test]
async fn handshake_by_callback_is_confirmed_with_a_get() {
    let app = start(BTreeMap::new(), HttpConfig::default()).await;
    let callback = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback_url = format!("http://{}/confirm?key=abc", callback.local_addr().unwrap());
    let handshake = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, &app.url)
            .header("WebHook-Request-Origin", origin)
            .header("WebHook-Request-Callback", &callback_url)
            .send()
    };
    // The callback must be on the requesting origin's host: an anonymous OPTIONS cannot make
    // the host call somewhere else.
    let r = handshake("events.example.com").await.unwrap();
    assert_eq!(r.status(), 400);
    let r = handshake("127.0.0.1").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        !r.headers().contains_key("webhook-allowed-origin"),
        "withheld when confirming by callback"
    );
    // One validation per origin at a time.
    let r = handshake("127.0.0.1").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(20), callback.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = vec![0; 1024];
    let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
        .await
        .unwrap();
    let request = String::from_utf8_lossy(&buf[..n]);
    assert!(request.starts_with("GET /confirm?key=abc "), "{request}");
}

#[tokio::test]
async fn two_app_pipeline_through_an_output() {
    // App B is a plain endpoint of the same kind; app A publishes to it through its output.
    let b = start(BTreeMap::new(), HttpConfig::default()).await;
    let mut outputs = BTreeMap::new();
    outputs.insert(
        "next".to_owned(),
        manifest::Output {
            sink: format!("{}/from-a", b.url).parse().unwrap(),
            mode: manifest::ContentMode::Binary,
            format: cloudevent::Format::Json,
            headers: BTreeMap::new(),
            webhook_origin: None,
            tls: None,
            ordered: false,
            sequence_gap: None,
            limits: manifest::QueueLimits::default(),
        },
    );
    let a = start(outputs, HttpConfig::default()).await;
    let r = post(&a.url, binding::encode_binary(&event("publish")), &[]).await;
    assert_eq!(
        r.status(),
        202,
        "accepted: the published event is queued for the output"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while b.calls.calls.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "app B never received the event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_events() {
    let mut app = start(BTreeMap::new(), HttpConfig::default()).await;
    let url = app.url.clone();
    let in_flight =
        tokio::spawn(async move { post(&url, binding::encode_binary(&event("slow")), &[]).await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.calls.calls.load(Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.stop.take().unwrap().send(()).unwrap();
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), 200, "the in-flight event completes");
    tokio::time::timeout(Duration::from_secs(20), app.done)
        .await
        .unwrap()
        .unwrap();
    assert!(
        reqwest::Client::new().post(&app.url).send().await.is_err(),
        "no longer accepting"
    );
}

/// Waits until `app` has handled `n` events, then a little longer to catch extras.
async fn expect_calls(app: &App, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.calls.calls.load(Ordering::SeqCst) < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sink got {} events, expected {n}",
            app.calls.calls.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.calls.calls.load(Ordering::SeqCst),
        n,
        "no extra deliveries"
    );
}

fn subscription(sink: &str, filters: serde_json::Value) -> delivery::Subscription {
    let mut sub = delivery::Subscription::new(
        uuid::Uuid::new_v4().to_string(),
        delivery::Protocol::Http,
        sink,
    );
    sub.filters = Some(filters.as_array().unwrap().clone());
    sub
}

#[tokio::test]
async fn ingress_events_reach_matching_subscriptions_and_get_202_once_stored() {
    let sink = start(BTreeMap::new(), HttpConfig::default()).await;
    let app = start(BTreeMap::new(), HttpConfig::default()).await;
    let sub = subscription(
        &format!("{}/hook", sink.url),
        serde_json::json!([{"prefix": {"type": "com.example."}}]),
    );
    app.delivery.put_subscription(sub).await.unwrap();
    let ingress = app.url.replace("/orders", "/ingress");

    let r = post(
        &ingress,
        binding::encode_binary(&event("com.example.created")),
        &[],
    )
    .await;
    assert_eq!(r.status(), 202, "stored for the matching subscription");
    let r = post(&ingress, binding::encode_structured(&event("other")), &[]).await;
    assert_eq!(r.status(), 204, "nothing matched, nothing stored");
    assert_eq!(
        app.calls.calls.load(Ordering::SeqCst),
        0,
        "no component behind /ingress"
    );
    expect_calls(&sink, 1).await;
}

#[tokio::test]
async fn handler_results_are_matched_against_subscriptions_too() {
    let sink = start(BTreeMap::new(), HttpConfig::default()).await;
    let app = start(BTreeMap::new(), HttpConfig::default()).await;
    let sub = subscription(
        &format!("{}/hook", sink.url),
        serde_json::json!([{"sql": "id LIKE '%-reply-%'"}]),
    );
    app.delivery.put_subscription(sub).await.unwrap();
    // The ingress event (id e1) does not match; its reply (id e1-reply-0) does.
    let r = post(&app.url, binding::encode_binary(&event("echo")), &[]).await;
    assert_eq!(r.status(), 200);
    let (_, replies) = reply_events(r).await;
    assert_eq!(replies[0].id(), "e1-reply-0");
    expect_calls(&sink, 1).await;
}

#[tokio::test]
async fn a_failed_handler_queues_nothing() {
    let sink = start(BTreeMap::new(), HttpConfig::default()).await;
    let app = start(BTreeMap::new(), HttpConfig::default()).await;
    let sub = subscription(&format!("{}/hook", sink.url), serde_json::json!([]));
    app.delivery.put_subscription(sub).await.unwrap();
    let r = post(&app.url, binding::encode_binary(&event("transient")), &[]).await;
    assert_eq!(
        r.status(),
        503,
        "the producer will retry, so nothing is kept"
    );
    assert_eq!(app.delivery.pending(None), 0);
    let r = post(&app.url, binding::encode_binary(&event("none")), &[]).await;
    assert_eq!(r.status(), 202, "an empty filter list matches every event");
    expect_calls(&sink, 1).await;
}

#[tokio::test]
async fn an_output_with_a_webhook_origin_does_the_handshake_before_the_first_delivery() {
    use http_body_util::Full;
    use hyper_util::rt::TokioIo;
    // A webhook receiver that records what it is sent and grants the handshake.
    /// (method, `WebHook-Request-Origin`) of each request, in order.
    type Seen = Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;
    let seen: Seen = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let record = record.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<_>| {
                    let origin = req
                        .headers()
                        .get("webhook-request-origin")
                        .map(|v| v.to_str().unwrap().to_owned());
                    record
                        .lock()
                        .unwrap()
                        .push((req.method().to_string(), origin.clone()));
                    let mut response = http::Response::new(Full::new(bytes::Bytes::new()));
                    if let Some(origin) = origin {
                        response
                            .headers_mut()
                            .insert("webhook-allowed-origin", origin.parse().unwrap());
                    }
                    async { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let mut outputs = BTreeMap::new();
    outputs.insert(
        "next".to_owned(),
        manifest::Output {
            sink: sink_url.parse().unwrap(),
            mode: manifest::ContentMode::Binary,
            format: cloudevent::Format::Json,
            headers: BTreeMap::new(),
            webhook_origin: Some("spindle.test".into()),
            tls: None,
            ordered: false,
            sequence_gap: None,
            limits: manifest::QueueLimits::default(),
        },
    );
    let app = start(outputs, HttpConfig::default()).await;
    let r = post(&app.url, binding::encode_binary(&event("publish")), &[]).await;
    assert_eq!(r.status(), 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.lock().unwrap().iter().any(|(m, _)| m == "POST") {
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        ("OPTIONS".to_owned(), Some("spindle.test".to_owned())),
        "{seen:?}"
    );
}
