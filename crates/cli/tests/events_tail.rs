//! `spindle events tail` against a running `spindle up`, as a user runs both: the tail
//! connects to the admin API's live stream, keeps only what its CESQL filter matches, and
//! shows each handled event and each delivery attempt with outcome and latency.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn event(id: &str, ty: &str) -> String {
    serde_json::json!({
        "specversion": "1.0", "id": id, "source": "/tail-test", "type": ty,
        "datacontenttype": "application/json", "data": {"id": id}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_tail_streams_the_filtered_events_with_outcomes() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let echo = support::guest("guest_echo");
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (format!("tail.in.{run}"), format!("tail.out.{run}"));
    running::write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "tail"

[[trigger.nats]]
subject = "{input}"
component = "echo"

[component.echo]
source = "{}"
[component.echo.outputs]
out = "nats://127.0.0.1:4222/{output}"
"#,
            echo.display()
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());

    // A bad filter is refused with the position, before any streaming.
    let refused = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["events", "tail", "--api", &up.admin, "--filter", "type ="])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("400") && said.contains("?filter"), "{said}");

    let mut tail = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args([
            "events",
            "tail",
            "--api",
            &up.admin,
            "--filter",
            "type = 'com.example.keep'",
            "--json",
            "--count",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Connected once it says so on stderr.
    let mut stderr = BufReader::new(tail.stderr.take().unwrap()).lines();
    let first = stderr.next().expect("the tail says it started").unwrap();
    assert!(first.starts_with("Tailing"), "{first}");
    std::thread::spawn(move || for _ in stderr {});

    let nats = async_nats::connect("127.0.0.1:4222").await.unwrap();
    for (id, ty) in [
        ("skipped", "com.example.skip"),
        ("kept", "com.example.keep"),
    ] {
        nats.publish(input.clone(), event(id, ty).into())
            .await
            .unwrap();
    }
    nats.flush().await.unwrap();

    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || tail.wait_with_output()),
    )
    .await
    .expect("the tail stops after --count records")
    .unwrap()
    .unwrap();
    assert!(output.status.success());
    let records: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    for record in &records {
        assert_eq!(
            record["event"]["id"], "kept",
            "only the filter's events: {record}"
        );
        assert!(record["latencyMs"].as_f64().unwrap() >= 0.0);
    }
    let handled = records
        .iter()
        .find(|r| r["stage"] == "handled")
        .expect("the handling is shown");
    assert_eq!(handled["component"], "echo");
    assert_eq!(handled["outcome"], "ok");
    let delivered = records
        .iter()
        .find(|r| r["stage"] == "delivery")
        .expect("the delivery attempt is shown");
    assert_eq!(delivered["subscription"], "output:echo:out");
    assert_eq!(delivered["outcome"], "delivered");
}
