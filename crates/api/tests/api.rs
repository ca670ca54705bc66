//! Every route and status of the admin API, over a real loopback socket, against a real
//! delivery engine in a temporary state directory.

use std::sync::Arc;
use std::time::Duration;

use delivery::{Delivery, SinkRegistry, SubscriptionId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    base: String,
    engine: Arc<Delivery>,
    client: reqwest::Client,
    token: Option<String>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start(token: Option<&str>) -> Server {
    start_with(token, SinkRegistry::with_defaults()).await
}

async fn start_with(token: Option<&str>, sinks: SinkRegistry) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Delivery::open(dir.path(), sinks).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let api = api::AdminApi::new(
        engine.clone(),
        api::AdminConfig {
            token: token.map(http_server::BearerToken::new),
            ..api::AdminConfig::default()
        },
    );
    tokio::spawn(api.serve(listener, async {
        let _ = stopped.await;
    }));
    Server {
        base,
        engine,
        client: reqwest::Client::new(),
        token: token.map(str::to_owned),
        _stop: stop,
        _dir: dir,
    }
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

impl Server {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = req.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    async fn create(&self, body: Value) -> Reply {
        self.call(Method::POST, "/subscriptions", Some(body)).await
    }
}

fn assert_problem(reply: &Reply, status: StatusCode, field: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(
        reply.headers["content-type"], "application/problem+json",
        "{}",
        reply.text
    );
    assert_eq!(reply.body["field"], field, "{}", reply.text);
    assert!(reply.body["title"].is_string());
    assert!(
        reply.body["detail"].as_str().unwrap().starts_with(field),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn service_routes() {
    let s = start(None).await;
    let r = s.call(Method::GET, "/healthz", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = s.call(Method::GET, "/openapi.yaml", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("/subscriptions/{id}"));
    assert!(r.text.contains("Apache"));
    let r = s.call(Method::GET, "/openapi.json", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["openapi"], "3.0.3");
    let r = s.call(Method::GET, "/nope", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s.call(Method::PATCH, "/subscriptions", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "GET, POST, OPTIONS");
    let r = s.call(Method::POST, "/healthz", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = s.call(Method::OPTIONS, "/subscriptions", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["allow"], "GET, POST, OPTIONS");
    let r = s.call(Method::OPTIONS, "/subscriptions/x", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["allow"], "GET, PUT, DELETE, OPTIONS");
    let r = s.call(Method::PATCH, "/subscriptions/x", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "GET, PUT, DELETE, OPTIONS");
    let r = s.call(Method::OPTIONS, "/deadletters", None).await;
    assert_eq!(r.headers["allow"], "GET, DELETE, OPTIONS");
    let r = s.call(Method::GET, "/deadletters/replay", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "POST, OPTIONS");
}

#[tokio::test]
async fn subscription_lifecycle() {
    let s = start(None).await;
    let r = s.call(Method::GET, "/subscriptions", None).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!([])));

    let request = json!({
        "sink": "http://127.0.0.1:9/hook",
        "protocol": "HTTP",
        "types": ["com.example.order.created"],
        "filters": [{"prefix": {"source": "/shop"}}, {"sql": "subject LIKE 'A%'"}],
        "protocolsettings": {"headers": {"x-k": "v"}},
    });
    let r = s.create(request.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let location = r.headers["location"].to_str().unwrap();
    assert_eq!(location, format!("{}/subscriptions/{id}", s.base));
    assert_eq!(r.body["filters"], request["filters"]);
    assert!(s.engine.subscription(&SubscriptionId::new(&id)).is_some());

    let r = s.call(Method::GET, "/subscriptions", None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["id"], id);
    let r = s
        .call(Method::GET, &format!("/subscriptions/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["sink"], "http://127.0.0.1:9/hook");
    for (query, want) in [
        ("?protocol=HTTP", 1),
        ("?protocol=NATS", 0),
        ("?type=com.example.order.created", 1),
        ("?type=other", 0),
        ("?source=%2Fshop", 0),
        ("?protocol=HTTP&type=com.example.order.created", 1),
    ] {
        let r = s
            .call(Method::GET, &format!("/subscriptions{query}"), None)
            .await;
        assert_eq!(r.body.as_array().unwrap().len(), want, "{query}");
    }

    // PUT replaces; the body's id may be absent or equal to the path's.
    let mut update = request.clone();
    update["sink"] = json!("http://127.0.0.1:9/other");
    let r = s
        .call(
            Method::PUT,
            &format!("/subscriptions/{id}"),
            Some(update.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["sink"], "http://127.0.0.1:9/other");
    update["id"] = json!(id);
    update["delivery"] = json!({"maxAttempts": 3});
    let r = s
        .call(
            Method::PUT,
            &format!("/subscriptions/{id}"),
            Some(update.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["delivery"]["maxAttempts"], 3);
    update["id"] = json!("someone-else");
    let r = s
        .call(
            Method::PUT,
            &format!("/subscriptions/{id}"),
            Some(update.clone()),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "/id");

    // PUT on an unknown id is 404 (the spec's PUT only updates).
    let r = s
        .call(Method::PUT, "/subscriptions/unknown", Some(request.clone()))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(
        s.engine
            .subscription(&SubscriptionId::new("unknown"))
            .is_none()
    );
    let r = s.call(Method::GET, "/subscriptions/unknown", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["content-type"], "application/problem+json");

    let r = s
        .call(Method::DELETE, &format!("/subscriptions/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["id"],
        id.as_str(),
        "the deleted subscription is returned"
    );
    let r = s
        .call(Method::DELETE, &format!("/subscriptions/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s
        .call(Method::GET, &format!("/subscriptions/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ids_are_percent_decoded() {
    let s = start(None).await;
    let sub = delivery::Subscription::new("a b/c", delivery::Protocol::Http, "http://h:1/");
    s.engine.put_subscription(sub).await.unwrap();
    let r = s.call(Method::GET, "/subscriptions/a%20b%2Fc", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], "a b/c");
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field() {
    let s = start(None).await;
    let ok = json!({"sink": "http://127.0.0.1:9/hook", "protocol": "HTTP"});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    let cases = [
        (json!([1]), "/"),
        (json!({"protocol": "HTTP"}), "/sink"),
        (json!({"sink": "http://h/"}), "/protocol"),
        (with("protocol", json!("CARRIER-PIGEON")), "/protocol"),
        (with("sink", json!("not a uri")), "/sink"),
        (with("sink", json!(42)), "/sink"),
        (with("sink", json!("nats://127.0.0.1:4222")), "/sink"),
        (with("sink", json!("ftp://example.com/hook")), "/sink"),
        (with("types", json!("t")), "/types"),
        (with("types", json!(["a", ""])), "/types/1"),
        (with("source", json!("")), "/source"),
        (with("config", json!({"": "v"})), "/config"),
        (with("source", json!(["s"])), "/source"),
        (with("config", json!({"k": 1})), "/config"),
        (
            with("protocolsettings", json!({"method": "NOT A METHOD"})),
            "/protocolsettings/method",
        ),
        (
            with("sinkcredential", json!({"credentialtype": "WHAT"})),
            "/sinkcredential/credentialtype",
        ),
        (with("delivery", json!({"maxInFlight": 0})), "/delivery"),
        (with("delivery", json!({"bogus": 1})), "/delivery"),
        (with("filters", json!({"exact": {}})), "/filters"),
        (
            with("filters", json!([{"regex": {"type": "x"}}])),
            "/filters/0",
        ),
        (
            with("filters", json!([{"exact": {"": "x"}}])),
            "/filters/0/exact/",
        ),
        (
            with(
                "filters",
                json!([{"exact": {"type": "a"}}, {"all": [{"prefix": {}}]}]),
            ),
            "/filters/1/all/0/prefix",
        ),
        (
            with(
                "filters",
                json!([{"exact": {"type": "a"}, "prefix": {"type": "b"}}]),
            ),
            "/filters/0",
        ),
        (with("filters", json!([3])), "/filters/0"),
    ];
    for (body, field) in cases {
        let r = s.create(body.clone()).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, field);
        eprintln!("{body} -> {}", r.body["detail"]);
    }
    // Unsupported protocol: the scheme fits, but this engine has no sink for it.
    let http_only = {
        let mut sinks = SinkRegistry::new();
        sinks.register("http", Arc::new(delivery::sink::HttpSinkFactory::new()));
        start_with(None, sinks).await
    };
    let r = http_only
        .create(json!({"sink": "mqtt://127.0.0.1:1883", "protocol": "MQTT5",
            "protocolsettings": {"topicname": "t"}}))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "/protocol");
    assert!(
        r.body["detail"].as_str().unwrap().contains("mqtt"),
        "{}",
        r.text
    );

    // CESQL errors carry the position.
    let r = s
        .create(with(
            "filters",
            json!([{"sql": "type = 'a' AND\n  subject ="}]),
        ))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "/filters/0/sql");
    assert_eq!(r.body["line"], 2, "{}", r.text);
    assert!(r.body["column"].as_u64().unwrap() > 1, "{}", r.text);
    let r = s
        .create(with("filters", json!([{"sql": "nofunc(type)"}])))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "/filters/0/sql");

    // Not JSON at all, and not declared as JSON.
    let response = s
        .client
        .post(format!("{}/subscriptions", s.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = s
        .client
        .post(format!("{}/subscriptions", s.base))
        .header("content-type", "text/plain")
        .body(ok.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = s
        .client
        .post(format!("{}/subscriptions", s.base))
        .body(vec![b' '; api::MAX_BODY + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(s.engine.subscriptions().is_empty());
}

#[tokio::test]
async fn secrets_are_redacted_and_kept_across_put() {
    let s = start(None).await;
    let body = json!({"sink": "http://127.0.0.1:9/hook", "protocol": "HTTP",
        "sinkcredential": {"credentialtype": "PLAIN", "identifier": "u", "secret": "hunter2"}});
    let r = s.create(body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["sinkcredential"]["secret"], "********");
    assert!(!r.text.contains("hunter2"));
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = s
        .call(Method::GET, &format!("/subscriptions/{id}"), None)
        .await;
    assert_eq!(r.body["sinkcredential"]["secret"], "********");
    assert_eq!(r.body["sinkcredential"]["identifier"], "u");
    let r = s.call(Method::GET, "/subscriptions", None).await;
    assert!(!r.text.contains("hunter2"));
    // Sending back what GET showed keeps the stored secret.
    let mut shown = s
        .call(Method::GET, &format!("/subscriptions/{id}"), None)
        .await
        .body;
    shown["types"] = json!(["t"]);
    let r = s
        .call(Method::PUT, &format!("/subscriptions/{id}"), Some(shown))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let stored = s.engine.subscription(&SubscriptionId::new(&id)).unwrap();
    assert_eq!(stored.sinkcredential.as_ref().unwrap()["secret"], "hunter2");
    assert_eq!(stored.types.as_deref(), Some(&["t".to_owned()][..]));
}

#[tokio::test]
async fn token_protection() {
    let s = start(Some("s3cret")).await;
    let bare = reqwest::Client::new();
    for (method, path) in [
        (Method::GET, "/subscriptions"),
        (Method::POST, "/subscriptions"),
        (Method::GET, "/subscriptions/x"),
        (Method::OPTIONS, "/subscriptions"),
        (Method::GET, "/deadletters"),
    ] {
        let r = bare
            .request(method.clone(), format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let r = bare
        .get(format!("{}/subscriptions", s.base))
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for open in ["/healthz", "/openapi.yaml"] {
        let r = bare.get(format!("{}{open}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{open}");
    }
    let r = s.call(Method::GET, "/subscriptions", None).await;
    assert_eq!(r.status, StatusCode::OK);
}

/// A sink that refuses everything with 400, so events are dead-lettered at once.
async fn refusing_sink() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    format!("http://{addr}/hook")
}

async fn dead_letters(s: &Server, query: &str, want: usize) -> Value {
    for _ in 0..200 {
        let r = s
            .call(Method::GET, &format!("/deadletters{query}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.body.as_array().unwrap().len() == want {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {want} dead letters for {query}");
}

#[tokio::test]
async fn dead_letter_admin() {
    let s = start(None).await;
    let sink = refusing_sink().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = s.create(json!({"sink": sink, "protocol": "HTTP"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let event = |n: u32| {
        cloudevent::Event::builder()
            .id(format!("e{n}"))
            .source("/test")
            .ty("t")
            .build()
            .unwrap()
    };
    s.engine
        .outbox()
        .enqueue(vec![
            (SubscriptionId::new(&ids[0]), event(1)),
            (SubscriptionId::new(&ids[0]), event(2)),
            (SubscriptionId::new(&ids[1]), event(3)),
        ])
        .await
        .unwrap();
    let all = dead_letters(&s, "", 3).await;
    let letter = &all[0];
    assert_eq!(letter["status"], 400);
    assert!(letter["reason"].is_string());
    assert!(letter["deadAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(letter["event"]["specversion"], "1.0");
    let first = dead_letters(&s, &format!("?subscription={}", ids[0]), 2).await;
    dead_letters(&s, &format!("?subscription={}&limit=1", ids[0]), 1).await;

    for (query, field) in [("?limit=0", "?limit"), ("?limit=x", "?limit")] {
        let r = s
            .call(Method::GET, &format!("/deadletters{query}"), None)
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, field);
    }
    let r = s
        .call(Method::POST, "/deadletters/replay", Some(json!({"seq": 1})))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "/seq");
    let r = s
        .call(
            Method::POST,
            "/deadletters/replay",
            Some(json!({"subscription": 7})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "/subscription");
    let r = s.call(Method::DELETE, "/deadletters?seq=1", None).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "?seq");

    // Replay one letter: it fails again and comes back with a new sequence number.
    let seq = first[0]["seq"].as_u64().unwrap();
    let r = s
        .call(
            Method::POST,
            "/deadletters/replay",
            Some(json!({"subscription": ids[0], "seq": seq})),
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::OK, json!({"replayed": 1}))
    );
    let again = dead_letters(&s, &format!("?subscription={}", ids[0]), 2).await;
    assert!(again.as_array().unwrap().iter().all(|l| l["seq"] != seq));

    // Purge one subscription's letters, then the rest.
    let r = s
        .call(
            Method::DELETE,
            &format!("/deadletters?subscription={}", ids[0]),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.body.clone()),
        (StatusCode::OK, json!({"purged": 2}))
    );
    dead_letters(&s, "", 1).await;
    let r = s.call(Method::POST, "/deadletters/replay", None).await;
    assert_eq!(r.body, json!({"replayed": 1}), "{}", r.text);
    dead_letters(&s, "", 1).await;
    let r = s.call(Method::DELETE, "/deadletters", None).await;
    assert_eq!(r.body, json!({"purged": 1}));
    dead_letters(&s, "", 0).await;
}

#[tokio::test]
async fn broker_sinks_are_accepted_and_their_settings_checked() {
    let s = start(None).await;
    // Nothing needs to listen: broker sinks connect on their first delivery.
    let accepted = [
        // Every scheme the manifest accepts for outputs is accepted here too, https included.
        json!({"sink": "https://127.0.0.1:9/hook", "protocol": "HTTP"}),
        json!({"sink": "nats://127.0.0.1:9/orders.created", "protocol": "NATS"}),
        json!({"sink": "nats://127.0.0.1:9", "protocol": "NATS",
            "protocolsettings": {"subject": "orders.created"}}),
        json!({"sink": "mqtt://127.0.0.1:9", "protocol": "MQTT5",
            "protocolsettings": {"topicname": "orders/created", "qos": 2, "retain": false}}),
        json!({"sink": "mqtt://127.0.0.1:9/orders", "protocol": "MQTT3",
            "delivery": {"mode": "structured"}}),
        json!({"sink": "amqp://127.0.0.1:9/queue/orders", "protocol": "AMQP",
            "sinkcredential": {"credentialtype": "PLAIN", "identifier": "u", "secret": "p"}}),
        json!({"sink": "amqp://127.0.0.1:9", "protocol": "AMQP",
            "protocolsettings": {"address": "/exchange/events/orders.created"}}),
        json!({"sink": "kafka://127.0.0.1:9", "protocol": "KAFKA",
            "protocolsettings": {"topicname": "orders", "partitionkeyextractor": "partitionkey"}}),
        // Brokers over TLS.
        json!({"sink": "mqtts://127.0.0.1:9/t", "protocol": "MQTT5"}),
        json!({"sink": "nats+tls://127.0.0.1:9/orders", "protocol": "NATS"}),
        json!({"sink": "tls://127.0.0.1:9/orders", "protocol": "NATS"}),
        json!({"sink": "amqps://127.0.0.1:9/queue/q", "protocol": "AMQP"}),
        json!({"sink": "kafka+tls://127.0.0.1:9/t", "protocol": "KAFKA"}),
    ];
    for body in accepted {
        let r = s.create(body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{body}: {}", r.text);
        assert_eq!(r.body["sink"], body["sink"], "{}", r.text);
        let id = r.body["id"].as_str().unwrap();
        let r = s
            .call(Method::GET, &format!("/subscriptions/{id}"), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["protocol"], body["protocol"]);
    }
    let refused = [
        // No destination anywhere.
        (
            json!({"sink": "kafka://127.0.0.1:9", "protocol": "KAFKA"}),
            "/sink",
        ),
        // A destination the broker cannot take.
        (
            json!({"sink": "nats://127.0.0.1:9/orders.*", "protocol": "NATS"}),
            "/sink",
        ),
        (
            json!({"sink": "amqp://127.0.0.1:9/orders", "protocol": "AMQP"}),
            "/sink",
        ),
        // The scheme must fit the protocol.
        (
            json!({"sink": "kafka://127.0.0.1:9/t", "protocol": "NATS"}),
            "/sink",
        ),
        (
            json!({"sink": "amqps://127.0.0.1:9/queue/q", "protocol": "KAFKA"}),
            "/sink",
        ),
        (
            json!({"sink": "gopher://127.0.0.1:9/t", "protocol": "NATS"}),
            "/sink",
        ),
        // Settings that contradict the URI, or that the sink cannot honour.
        (
            json!({"sink": "nats://127.0.0.1:9/a", "protocol": "NATS",
                "protocolsettings": {"subject": "b"}}),
            "/protocolsettings/subject",
        ),
        (
            json!({"sink": "mqtt://127.0.0.1:9/t", "protocol": "MQTT5",
                "protocolsettings": {"topicname": "t", "qos": 3}}),
            "/protocolsettings/qos",
        ),
        (
            json!({"sink": "mqtt://127.0.0.1:9/t", "protocol": "MQTT3",
                "protocolsettings": {"topicname": "t", "expiry": 60}}),
            "/protocolsettings/expiry",
        ),
        (
            json!({"sink": "amqp://127.0.0.1:9/queue/q", "protocol": "AMQP",
                "protocolsettings": {"sendersettlementmode": "settled"}}),
            "/protocolsettings/sendersettlementmode",
        ),
        (
            json!({"sink": "kafka://127.0.0.1:9/t", "protocol": "KAFKA",
                "protocolsettings": {"acks": "1"}}),
            "/protocolsettings/acks",
        ),
        (
            json!({"sink": "nats://127.0.0.1:9/a", "protocol": "NATS",
                "protocolsettings": {"headers": {}}}),
            "/protocolsettings",
        ),
        (
            json!({"sink": "nats://127.0.0.1:9/a", "protocol": "NATS",
                "sinkcredential": {"credentialtype": "PLAIN", "identifier": "u", "secret": "p"}}),
            "/sinkcredential",
        ),
    ];
    for (body, field) in refused {
        let r = s.create(body.clone()).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, field);
        eprintln!("{body} -> {}", r.body["detail"]);
    }
}

#[tokio::test]
async fn handle_works_without_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        Delivery::open(dir.path(), SinkRegistry::with_defaults())
            .await
            .unwrap(),
    );
    let api = api::AdminApi::new(engine, api::AdminConfig::default());
    let request = http::Request::get("/healthz")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    assert_eq!(api.handle(request).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn serve_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(
        Delivery::open(dir.path(), SinkRegistry::with_defaults())
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let api = api::AdminApi::new(engine, api::AdminConfig::default());
    let server = tokio::spawn(api.serve(listener, async {
        let _ = stopped.await;
    }));
    let r = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// What another web site can make a developer's browser send to a loopback admin API: a
/// simple cross-site POST (no JSON content type, so no CORS preflight), a request with that
/// site's `Origin`, or one through a rebinding DNS name (`Host` of the attacker). All refused,
/// nothing created; the same requests from a real client work.
#[tokio::test]
async fn browser_attacks_are_refused() {
    let s = start(None).await;
    let body = json!({"sink": "http://127.0.0.1:9/hook", "protocol": "HTTP"}).to_string();
    let post = |content_type: Option<&'static str>, origin: Option<String>| {
        let mut req = s
            .client
            .post(format!("{}/subscriptions", s.base))
            .body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send()
    };
    let r = post(None, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = post(Some("text/plain"), None).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = post(
        Some("application/json"),
        Some("https://evil.example".into()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let replay = s
        .client
        .post(format!("{}/deadletters/replay", s.base))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);
    let replay = s
        .client
        .post(format!("{}/deadletters/replay", s.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // DNS rebinding: the browser sends the attacker's name as Host.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /subscriptions HTTP/1.1\r\nHost: rebind.evil.example:3001\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(s.engine.subscriptions().is_empty());

    // A real client (same origin, or none) gets through.
    let r = post(Some("application/json"), Some(s.base.clone()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = post(Some("application/json"), None).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// Custom headers cannot forge the event (`ce-*`, `Content-Type`) or the request's framing
/// and routing (`Host`, `Content-Length`, hop-by-hop headers).
#[tokio::test]
async fn reserved_headers_are_refused_in_protocolsettings() {
    let s = start(None).await;
    for name in [
        "ce-id",
        "CE-Type",
        "Content-Type",
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
    ] {
        let r = s
            .create(
                json!({"sink": "http://127.0.0.1:9/hook", "protocol": "HTTP",
                "protocolsettings": {"headers": {name: "x"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.text);
        assert!(r.text.contains("cannot be set"), "{}", r.text);
    }
    let r = s
        .create(
            json!({"sink": "http://127.0.0.1:9/hook", "protocol": "HTTP",
            "protocolsettings": {"headers": {"x-tenant": "acme"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// A subscription cannot make Spindle post to a cloud metadata service or another address no
/// sink has a reason to be at (SSRF): refused at creation with a 400 naming the rule.
#[tokio::test]
async fn sinks_at_metadata_and_link_local_addresses_are_refused() {
    let s = start(None).await;
    for sink in [
        "http://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/hook",
        "http://0.0.0.0:8080/hook",
    ] {
        let r = s.create(json!({"sink": sink, "protocol": "HTTP"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{sink}: {}", r.text);
        assert!(r.text.contains("egress policy"), "{}", r.text);
    }
    assert!(s.engine.subscriptions().is_empty());
}
