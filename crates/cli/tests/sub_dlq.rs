//! `spindle sub` and `spindle dlq`: the real binary against a real admin API (over a real
//! delivery engine in a temporary state directory), started in-process on a loopback port.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use delivery::{Delivery, SinkRegistry, SubscriptionId};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Admin {
    url: String,
    engine: Arc<Delivery>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start(token: Option<&str>) -> Admin {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (engine, url) = runtime.block_on(async {
        let engine = Arc::new(
            Delivery::open(dir.path(), SinkRegistry::with_defaults())
                .await
                .unwrap(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let api = api::AdminApi::new(
            engine.clone(),
            api::AdminConfig {
                token: token.map(http_server::BearerToken::new),
                ..api::AdminConfig::default()
            },
        );
        tokio::spawn(api.serve(listener, std::future::pending()));
        (engine, url)
    });
    Admin {
        url,
        engine,
        runtime,
        _dir: dir,
    }
}

impl Admin {
    fn spindle(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(args)
            .env("SPINDLE_API", &self.url)
            .env_remove("SPINDLE_TOKEN")
            .output()
            .unwrap()
    }
}

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn failed(output: &Output) -> String {
    assert!(!output.status.success(), "unexpected success");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn sub_create_list_get_delete() {
    let admin = start(None);
    let out = ok(&admin.spindle(&["sub", "list"]));
    assert_eq!(out.trim(), "no subscriptions");

    let created = ok(&admin.spindle(&[
        "sub",
        "create",
        "--sink",
        "http://127.0.0.1:9/hook",
        "--type",
        "com.example.a",
        "--type",
        "com.example.b",
        "--source",
        "/shop",
        "--filter",
        r#"{"prefix":{"subject":"A"}}"#,
        "--sql",
        "subject LIKE 'A%'",
        "--config",
        "delivery.maxAttempts=3",
    ]));
    let created: Value = serde_json::from_str(&created).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["protocol"], "HTTP");
    assert_eq!(created["filters"].as_array().unwrap().len(), 2);
    let stored = admin
        .engine
        .subscription(&SubscriptionId::new(&id))
        .unwrap();
    assert_eq!(stored.types.as_ref().unwrap().len(), 2);
    assert_eq!(stored.delivery_policy().unwrap().max_attempts, Some(3));

    let table = ok(&admin.spindle(&["sub", "list"]));
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("ID") && header.contains("PROTOCOL") && header.contains("FILTERS"));
    let row = lines.next().unwrap();
    assert!(row.starts_with(&id), "{table}");
    assert!(
        row.contains("http://127.0.0.1:9/hook")
            && row.contains("types=com.example.a,com.example.b")
    );

    let json: Value =
        serde_json::from_str(&ok(&admin.spindle(&["sub", "list", "--json"]))).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    let one: Value = serde_json::from_str(&ok(&admin.spindle(&["sub", "get", &id]))).unwrap();
    assert_eq!(one["source"], "/shop");

    // --id replaces the existing subscription.
    let replaced = ok(&admin.spindle(&[
        "sub",
        "create",
        "--id",
        &id,
        "--sink",
        "http://127.0.0.1:9/other",
    ]));
    assert!(replaced.contains("http://127.0.0.1:9/other"));
    assert_eq!(admin.engine.subscriptions().len(), 1);

    let out = ok(&admin.spindle(&["sub", "delete", &id]));
    assert!(out.contains(&id));
    let err = failed(&admin.spindle(&["sub", "get", &id]));
    assert!(err.contains("404"), "{err}");
    let err = failed(&admin.spindle(&["sub", "delete", &id]));
    assert!(err.contains("404"), "{err}");
}

#[test]
fn sub_errors_are_readable() {
    let admin = start(None);
    let err = failed(&admin.spindle(&[
        "sub",
        "create",
        "--sink",
        "http://127.0.0.1:9/h",
        "--sql",
        "type =",
    ]));
    assert!(err.contains("400 Bad Request"), "{err}");
    assert!(err.contains("field: /filters/0/sql"), "{err}");
    assert!(err.contains("column"), "{err}");
    let err = failed(&admin.spindle(&[
        "sub",
        "create",
        "--sink",
        "mqtt://h:1883",
        "--protocol",
        "mqtt5",
    ]));
    // Broker sinks are built in; this one names no topic.
    assert!(
        err.contains("field: /sink") && err.contains("missing topic"),
        "{err}"
    );
    let err =
        failed(&admin.spindle(&["sub", "create", "--sink", "http://h/", "--filter", "{nope"]));
    assert!(err.contains("--filter #1 is not valid JSON"), "{err}");
    let err = failed(
        &Command::new(env!("CARGO_BIN_EXE_spindle"))
            .args(["sub", "list", "--api", "http://127.0.0.1:1"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("cannot reach the admin API"), "{err}");
    assert!(admin.engine.subscriptions().is_empty());
}

#[test]
fn tokens_are_sent() {
    let admin = start(Some("s3cret"));
    let err = failed(&admin.spindle(&["sub", "list"]));
    assert!(err.contains("401") && err.contains("--token"), "{err}");
    ok(&admin.spindle(&["sub", "list", "--token", "s3cret"]));
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["dlq", "list"])
        .env("SPINDLE_API", &admin.url)
        .env("SPINDLE_TOKEN", "s3cret")
        .output()
        .unwrap();
    assert_eq!(ok(&out).trim(), "no dead letters");
}

/// A sink that refuses every event with 400, so they are dead-lettered at once.
async fn refusing_sink() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
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

fn wait_for_letters(admin: &Admin, want: usize) {
    for _ in 0..200 {
        let n = admin.engine.dead_letters(None, 1000).unwrap().len();
        if n == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("expected {want} dead letters");
}

#[test]
fn dlq_list_replay_purge() {
    let admin = start(None);
    let sink = admin.runtime.block_on(refusing_sink());
    let created = ok(&admin.spindle(&["sub", "create", "--sink", &sink]));
    let id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let event = |n: u32| {
        cloudevent::Event::builder()
            .id(format!("evt-{n}"))
            .source("/test")
            .ty("com.example.refused")
            .build()
            .unwrap()
    };
    admin
        .runtime
        .block_on(admin.engine.outbox().enqueue(vec![
            (SubscriptionId::new(&id), event(1)),
            (SubscriptionId::new(&id), event(2)),
        ]))
        .unwrap();
    wait_for_letters(&admin, 2);

    let table = ok(&admin.spindle(&["dlq", "list"]));
    assert!(table.starts_with("SUBSCRIPTION"), "{table}");
    assert!(
        table.contains("evt-1") && table.contains("com.example.refused") && table.contains("400")
    );
    let json: Value = serde_json::from_str(&ok(&admin.spindle(&[
        "dlq",
        "list",
        "--subscription",
        &id,
        "--json",
    ])))
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let seq = json[0]["seq"].as_u64().unwrap().to_string();

    let out = ok(&admin.spindle(&["dlq", "replay", "--subscription", &id, "--seq", &seq]));
    assert_eq!(out.trim(), "replayed 1 dead letter(s)");
    wait_for_letters(&admin, 2);
    let out = ok(&admin.spindle(&["dlq", "replay"]));
    assert_eq!(out.trim(), "replayed 2 dead letter(s)");
    wait_for_letters(&admin, 2);

    let err = failed(&admin.spindle(&["dlq", "purge"]));
    assert!(err.contains("--subscription"), "{err}");
    let out = ok(&admin.spindle(&["dlq", "purge", "--subscription", &id]));
    assert_eq!(out.trim(), "purged 2 dead letter(s)");
    let out = ok(&admin.spindle(&["dlq", "purge", "--all"]));
    assert_eq!(out.trim(), "purged 0 dead letter(s)");
    assert_eq!(
        ok(&admin.spindle(&["dlq", "list"])).trim(),
        "no dead letters"
    );
}
