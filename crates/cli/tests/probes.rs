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
    std::fs::write(
        dir.path().join("spindle.toml"),
        format!(
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
    )
    .unwrap();
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
