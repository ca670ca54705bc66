//! `spindle up` started the way a user starts it, on ports the system picks: the real binary in
//! a directory, with the addresses and trigger listing it prints read back from its stdout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `spindle up`; killed (SIGKILL) when dropped.
pub struct Up {
    pub child: Child,
    /// The HTTP trigger's base URL, e.g. `http://127.0.0.1:41234` (`https://` with TLS).
    pub http: String,
    /// The admin API's base URL.
    pub admin: String,
    /// The first line, e.g. `Serving <app> on http://…`.
    pub banner: String,
    /// The lines between the `Serving` line and the admin line: one per trigger.
    pub listing: Vec<String>,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `spindle up` in `dir` (which holds `spindle.toml`) and waits until it serves.
pub fn up(dir: &Path, stderr: Stdio) -> Up {
    up_with_env(dir, stderr, &[])
}

/// [`up`] with extra environment variables for the process.
pub fn up_with_env(dir: &Path, stderr: Stdio, env: &[(&str, &str)]) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .envs(env.iter().copied())
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut http, mut admin, mut listing, mut banner) = (None, None, Vec::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some((_, url)) = line.split_once(" on ")
            && line.starts_with("Serving")
        {
            http = Some(url.to_owned());
            banner = line.clone();
        } else if let Some((_, addr)) = line.split_once("dead letters) on ") {
            admin = Some(addr.to_owned());
            break;
        } else {
            listing.push(line);
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Up {
        child,
        http: http.expect("spindle up prints its address"),
        admin: admin.expect("spindle up prints the admin address"),
        banner,
        listing,
    }
}

/// Writes `text` as `dir/spindle.toml`.
pub fn write_manifest(dir: &Path, text: &str) {
    std::fs::write(dir.join("spindle.toml"), text).unwrap();
}

/// POSTs `event` in binary mode to `url`; the status and the reply's body as text.
pub async fn post(url: &str, event: &cloudevent::Event) -> (u16, String) {
    let encoded = cloudevent::http::encode_binary(event);
    let response = reqwest::Client::new()
        .post(url)
        .headers(encoded.headers)
        .body(encoded.body)
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// [`post`] from synchronous code, on a runtime of its own.
pub fn post_blocking(url: &str, event: &cloudevent::Event) -> (u16, String) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(post(url, event))
}

/// The dead letters the admin API at `admin` lists.
pub async fn dead_letters(admin: &str) -> Vec<serde_json::Value> {
    let text = reqwest::get(format!("{admin}/deadletters"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .or_else(|| v["deadletters"].as_array())
        .cloned()
        .unwrap_or_default()
}

/// Polls [`dead_letters`] until there are at least `count` (panics after 90 s).
pub async fn wait_for_dead_letters(admin: &str, count: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let letters = dead_letters(admin).await;
        if letters.len() >= count {
            return letters;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} dead letters, not {count}: {letters:?}",
            letters.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `POST /subscriptions` through the admin API at `admin`: the status and the body.
pub async fn post_subscription(admin: &str, body: &serde_json::Value) -> (u16, String) {
    let created = reqwest::Client::new()
        .post(format!("{admin}/subscriptions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = created.status().as_u16();
    (status, created.text().await.unwrap())
}

/// Creates a subscription through the admin API (`POST /subscriptions`), expecting `201`;
/// returns the stored subscription.
pub async fn create_subscription(admin: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, text) = post_subscription(admin, &body).await;
    assert_eq!(status, 201, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// An HTTP sink on loopback for subscriptions and outputs to deliver to: answers `503` while
/// `down` is set, else `200` after recording the request's headers and when it arrived.
pub struct RecordingSink {
    /// Its URL, `http://127.0.0.1:<port>/hook`.
    pub url: String,
    /// While set, every request is answered `503` and not recorded.
    pub down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(http::HeaderMap, std::time::Instant)>>>,
}

impl RecordingSink {
    /// Starts one, up (answering `200`).
    pub async fn start() -> RecordingSink {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (d, s) = (down.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (down, seen) = (d.clone(), s.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let (down, seen) = (down.clone(), seen.clone());
                            async move {
                                use http_body_util::BodyExt;
                                let (parts, body) = req.into_parts();
                                let _ = body.collect().await;
                                let mut response = http::Response::new(http_body_util::Full::new(
                                    bytes::Bytes::new(),
                                ));
                                if down.load(Ordering::SeqCst) {
                                    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                                } else {
                                    seen.lock()
                                        .unwrap()
                                        .push((parts.headers, std::time::Instant::now()));
                                }
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RecordingSink { url, down, seen }
    }

    /// How many requests it recorded.
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Header `name` of each recorded request, in arrival order (empty when absent).
    pub fn header(&self, name: &str) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(headers, _)| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// When each recorded request arrived.
    pub fn times(&self) -> Vec<std::time::Instant> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, at)| *at)
            .collect()
    }

    /// Waits until it recorded at least `count` requests (panics after 90 s, listing them).
    pub async fn wait_for(&self, count: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while self.len() < count {
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {count} requests arrived: ids {:?}",
                self.len(),
                self.header("ce-id")
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// `componentize-py` (PyPI, pinned as in the toolchain notes), installed when missing.
pub fn componentize_py() -> String {
    use std::process::Command;
    let works = || {
        Command::new("componentize-py")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works() {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "componentize-py==0.25.1"])
            .status()
            .expect("run pip");
        assert!(status.success(), "pip install componentize-py failed");
    }
    "componentize-py".into()
}

/// The repository root.
pub fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs `spindle ARGS` in `dir` and expects it to succeed; its standard output.
pub fn spindle_ok(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spindle {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
