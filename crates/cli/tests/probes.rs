//! `/healthz` (liveness) and `/readyz` (readiness) of a running `spindle up`, as an
//! orchestrator probes them: no token needed, `/readyz` lists what it checked.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::process::Stdio;

#[test]
fn readiness_lists_the_store_the_workers_and_each_broker_trigger() {
    let echo = support::guest("guest_echo");
    let dir = tempfile::tempdir().unwrap();
    let subject = format!("spindle.probe.{}", uuid::Uuid::new_v4().simple());
    running::write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "probes"
[application.admin]
token = "s3cret"
[[trigger.nats]]
subject = "{subject}"
component = "echo"
[component.echo]
source = "{}"
"#,
            echo.display()
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let live = client
            .get(format!("{}/healthz", up.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(live.status(), 200);

        let ready = client
            .get(format!("{}/readyz", up.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "probes need no token");
        let body: serde_json::Value = serde_json::from_str(&ready.text().await.unwrap()).unwrap();
        assert_eq!(body["status"], "ready", "{body}");
        let names: Vec<&str> = body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"store"), "{body}");
        assert!(names.contains(&"delivery-workers"), "{body}");
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("trigger nats://") && n.ends_with(&subject)),
            "{body}"
        );
        assert!(
            body["checks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["ok"] == true),
            "{body}"
        );

        let post = client
            .post(format!("{}/readyz", up.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 405);
    });
}

/// Logs written to a pipe carry no ANSI colour codes; `SPINDLE_LOG_FORMAT=json` (the
/// `--log-format json` flag) writes one JSON object per line.
#[test]
fn logs_off_a_terminal_are_plain_text_or_json() {
    use std::io::{BufRead, BufReader};
    let echo = support::guest("guest_echo");
    for json in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        running::write_manifest(
            dir.path(),
            &format!(
                "spindle_manifest_version = 1\n[application]\nname = \"logs\"\n[[trigger.http]]\nroute = \"/e\"\ncomponent = \"echo\"\n[component.echo]\nsource = \"{}\"\n",
                echo.display()
            ),
        );
        let env: &[(&str, &str)] = if json {
            &[("SPINDLE_LOG_FORMAT", "json")]
        } else {
            &[]
        };
        let mut up = running::up_with_env(dir.path(), Stdio::piped(), env);
        let stderr = up.child.stderr.take().unwrap();
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let done = line.contains("delivery engine started");
            lines.push(line);
            if done {
                break;
            }
        }
        assert!(!lines.is_empty());
        for line in &lines {
            assert!(!line.contains('\u{1b}'), "an escape code in {line:?}");
            if json {
                let v: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
            }
        }
    }
}

/// The guest's own log lines carry the event they were written for: its id, and its trace
/// (the distributed-tracing `traceparent` extension) when it has one.
#[test]
fn a_guests_log_lines_name_the_event_and_its_trace() {
    use std::io::{BufRead, BufReader};
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        &format!(
            "spindle_manifest_version = 1\n[application]\nname = \"traced\"\n[[trigger.http]]\nroute = \"/b\"\ncomponent = \"behaviours\"\n[component.behaviours]\nsource = \"{}\"\n",
            behaviours.display()
        ),
    );
    let mut up = running::up_with_env(
        dir.path(),
        Stdio::piped(),
        &[("SPINDLE_LOG_FORMAT", "json")],
    );
    let stderr = up.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("logged by the guest") {
                let _ = tx.send(line);
            }
        }
    });
    let trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let event = cloudevent::Event::builder()
        .id("traced-1")
        .source("/traced")
        .ty("log")
        .extension(
            "traceparent",
            cloudevent::AttributeValue::string(trace).unwrap(),
        )
        .build()
        .unwrap();
    let (status, _) = running::post_blocking(&format!("{}/b", up.http), &event);
    assert!((200..300).contains(&status), "{status}");
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the guest's log line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let span = &v["span"];
    assert_eq!(span["name"], "event", "{line}");
    assert_eq!(span["event_id"], "traced-1", "{line}");
    assert_eq!(span["traceparent"], trace, "{line}");
    assert_eq!(span["component"], "behaviours", "{line}");
}

/// A token written inline in `spindle.toml` works, with a warning to move it out of the file.
#[test]
fn an_inline_token_is_warned_about() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        "spindle_manifest_version = 1\n[application]\nname = \"inline\"\n[application.admin]\ntoken = \"s3cret\"\n[[trigger.http]]\nroute = \"/e\"\n",
    );
    let mut up = running::up(dir.path(), Stdio::piped());
    let stderr = up.child.stderr.take().unwrap();
    let mut warned = false;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        assert!(!line.contains("s3cret"), "the token was logged: {line}");
        if line.contains("[application.admin] token is written in spindle.toml") {
            warned = true;
        }
        if line.contains("delivery engine started") {
            break;
        }
    }
    assert!(warned);
}

/// `/readyz` follows a NATS trigger's connection: `503` naming the trigger while its server
/// is down, `200` again once the client has reconnected; `spindle up` logs both changes.
#[test]
fn readiness_follows_a_nats_triggers_connection() {
    let echo = support::guest("guest_echo");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nats = |port: u16| {
        let child = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child
    };
    let mut server = nats(port);
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        &format!(
            "spindle_manifest_version = 1\n[application]\nname = \"ready-nats\"\n[[trigger.nats]]\naddress = \"nats://127.0.0.1:{port}\"\nsubject = \"ready\"\ncomponent = \"echo\"\n[component.echo]\nsource = \"{}\"\n",
            echo.display()
        ),
    );
    let mut up = running::up(dir.path(), Stdio::piped());
    // spindle up's own log, read as it comes.
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        use std::io::{BufRead, BufReader};
        let (stderr, log) = (up.child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
    }
    let logged = |what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(line) = log.lock().unwrap().iter().find(|l| {
                l.contains(what) && l.contains(&format!("trigger nats://127.0.0.1:{port}"))
            }) {
                return line.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "spindle up never logged {what:?} for the trigger: {:?}",
                log.lock().unwrap()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let readyz = || {
        rt.block_on(async {
            let r = reqwest::get(format!("{}/readyz", up.admin)).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let wait_for = |status: u16| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (got, body) = readyz();
            if got == status {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still {got}, not {status}: {body}"
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    };
    wait_for(200);
    let _ = server.kill();
    let _ = server.wait();
    let body = wait_for(503);
    assert!(body.contains(&format!("nats://127.0.0.1:{port}")), "{body}");
    // What is degraded shows in spindle up's own output too, and so does the recovery.
    logged("degraded");
    server = nats(port);
    wait_for(200);
    logged("recovered");
    let _ = server.kill();
    let _ = server.wait();
}
