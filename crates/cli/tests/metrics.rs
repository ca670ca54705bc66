//! `/metrics` on the admin listener, scraped by the real Prometheus (Debian's `prometheus`
//! package) and queried through its HTTP API, after events went through a running app.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cloudevent::Event;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_event_and_handler_metrics() {
    let echo = support::guest("guest_echo");
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        &format!(
            "spindle_manifest_version = 1\n[application]\nname = \"metrics\"\n[[trigger.http]]\nroute = \"/echo\"\ncomponent = \"echo\"\n[component.echo]\nsource = \"{}\"\n",
            echo.display()
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());
    let client = reqwest::Client::new();
    for i in 0..3 {
        let event = Event::builder()
            .id(format!("m{i}"))
            .source("/metrics")
            .ty("com.example.metered")
            .build()
            .unwrap();
        let (status, _) = running::post(&format!("{}/echo", up.http), &event).await;
        assert_eq!(status, 200);
    }

    // The exposition itself.
    let text = client
        .get(format!("{}/metrics", up.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"spindle_events_received_total{trigger="http",outcome="accepted"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"spindle_handler_duration_seconds_count{component="echo",outcome="ok"} 3"#),
        "{text}"
    );

    // The real Prometheus scrapes it, and its query API answers with the same value.
    let admin = up.admin.trim_start_matches("http://").to_owned();
    let web_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: spindle\n    static_configs:\n      - targets: ['{admin}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus)"),
    );
    let query = format!(
        "http://127.0.0.1:{web_port}/api/v1/query?query=spindle_events_received_total%7Btrigger%3D%22http%22%2Coutcome%3D%22accepted%22%7D"
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = client.get(&query).send().await
            && let Ok(body) = r.text().await
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
            && let Some(value) = v["data"]["result"][0]["value"][1].as_str()
        {
            assert_eq!(value, "3", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus never had the metric");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
