//! What every subcommand sets up: runtimes on threads of their own, a Spindle app served
//! in-process (what `spindle up` runs), the echo guest, and the machine's load average.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use delivery::Delivery;
use runtime::{App, AppOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[path = "../../engine/tests/support/mod.rs"]
mod support;

/// The server's runtime: a multi-threaded tokio runtime with `threads` workers, which the app
/// (or the native server it is compared with) runs on.
pub fn server_runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("server")
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs `make()` to completion on a current-thread runtime on a new thread (the load
/// generator: one core at most, apart from the server's threads).
pub fn on_thread<F, Fut, T>(name: &str, make: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime")
                .block_on(make())
        })
        .expect("spawn a thread")
        .join()
        .expect("the thread did not panic")
}

/// A current-thread runtime on a thread of its own that runs until dropped (a sink that
/// outlives one load run).
pub struct Background {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Starts the runtime thread.
    pub fn start(name: &str) -> Background {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                let _ = handle_tx.send(rt.handle().clone());
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })
            .expect("spawn a thread");
        Background {
            handle: handle_rx.recv().expect("the runtime thread started"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Runs `future` as a task of this runtime and waits for its output.
    pub fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle
            .block_on(self.handle.spawn(future))
            .expect("the task did not panic")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A Spindle app loaded from a manifest and served on a loopback port, as `spindle up` does
/// (minus the admin API), with its state directory in a fresh temporary directory.
pub struct RunningApp {
    /// Where its HTTP trigger listens.
    pub addr: SocketAddr,
    /// Its delivery engine (subscriptions, outbox).
    pub delivery: Arc<Delivery>,
    stop: Option<oneshot::Sender<()>>,
    serving: JoinHandle<std::io::Result<()>>,
    _state: tempfile::TempDir,
}

impl RunningApp {
    /// Loads the app of `manifest` (a `spindle.toml`) and serves it. Call within the server's
    /// runtime.
    pub async fn start(manifest: &str) -> anyhow::Result<RunningApp> {
        // In the temporary directory of the system disk, so the outbox's fsyncs are real.
        let state = tempfile::Builder::new().prefix("spindle-bench").tempdir()?;
        let manifest = manifest::Manifest::from_str(manifest, state.path())?;
        let app = App::load(
            &manifest,
            &AppOptions {
                state_dir: state.path().join(".spindle"),
                addresses: None,
            },
        )
        .await?;
        let delivery = app.delivery().clone();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(app.serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(RunningApp {
            addr,
            delivery,
            stop: Some(stop),
            serving,
            _state: state,
        })
    }

    /// Stops serving, lets the delivery engine stop, and removes the state directory.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.serving).await??;
        Ok(())
    }
}

/// The echo guest (`tests/guests/echo`: returns the event it gets): `path` if given, else
/// built from source for wasm32-wasip2 (cached by cargo under `target/guests-*`).
pub fn echo_guest(path: Option<&Path>) -> PathBuf {
    if let Some(path) = path {
        return path.to_owned();
    }
    eprintln!("building the echo guest (tests/guests/echo) if needed...");
    support::guest("guest_echo")
}

/// A guest of `tests/guests` by its wasm name (e.g. `guest_behaviours`), built from source.
pub fn guest(name: &str) -> PathBuf {
    support::guest(name)
}

/// Runs a hidden subcommand of this binary in a child process (a benchmark's load side, kept
/// apart from the server's threads) and reads what it reported with [`report_to_parent`].
/// `what` names the child in errors.
pub fn run_child<T: serde::de::DeserializeOwned>(
    subcommand: &str,
    args: &[String],
    what: &str,
) -> anyhow::Result<T> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .arg(subcommand)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(output.status.success(), "{what} failed ({})", output.status);
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .map_err(|e| anyhow::anyhow!("unexpected output of {what} ({e}): {text}"))
}

/// What a hidden subcommand prints last for [`run_child`]: one line of JSON.
pub fn report_to_parent<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// The 1, 5 and 15 minute load averages, as `uptime` shows them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            let fields: Vec<&str> = text.split_whitespace().take(3).collect();
            format!("load average {}", fields.join(" "))
        })
        .unwrap_or_else(|| "load average unknown".to_owned())
}

/// How many CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A run-unique suffix for subjects and ids.
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// CPU time used so far by this process's threads, by thread name, in clock ticks (Linux
/// `/proc/self/task/*/stat`; empty elsewhere). Threads that have exited are not counted, so
/// take both snapshots while the threads measured are alive.
pub fn cpu_by_thread() -> std::collections::BTreeMap<String, u64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ...`: the name may hold spaces, so split at the last parenthesis.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
        let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
        if let (Some(user), Some(system)) = (ticks(14), ticks(15)) {
            *by_name.entry(name).or_insert(0) += user + system;
        }
    }
    by_name
}

/// Microseconds of CPU per event spent by the threads whose name starts with `prefix`
/// between two [`cpu_by_thread`] snapshots.
pub fn cpu_per_event(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
    prefix: &str,
    events: u64,
) -> f64 {
    /// `/proc` counts in USER_HZ, which is 100 on Linux.
    const TICK_US: f64 = 10_000.0;
    let sum = |m: &std::collections::BTreeMap<String, u64>| -> u64 {
        m.iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, ticks)| ticks)
            .sum()
    };
    sum(after).saturating_sub(sum(before)) as f64 * TICK_US / events.max(1) as f64
}
