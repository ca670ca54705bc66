//! A scripted HTTP sink on 127.0.0.1 for the delivery tests: records every request, counts
//! concurrency, and answers what the test's behaviour function says.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudevent::{Data, Event};
use delivery::{Delivery, Protocol, SinkRegistry, Subscription};
use http::{HeaderMap, Method, Response};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One request the sink saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub headers: HeaderMap,
    pub event: Option<Event>,
    pub status: u16,
    pub at: Instant,
}

/// What to answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
    pub body: &'static str,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: "",
        }
    }

    pub fn body(mut self, body: &'static str) -> Self {
        self.body = body;
        self
    }

    pub fn ok() -> Self {
        Self::status(204)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Behaviour = Box<dyn FnMut(&Method, Option<&Event>, usize) -> Reply + Send>;

#[derive(Default)]
pub struct State {
    pub seen: Mutex<Vec<Seen>>,
    pub requests: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

impl State {
    /// Events answered with a 2xx, in the order the answers were decided.
    pub fn delivered(&self) -> Vec<Event> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| (200..300).contains(&s.status))
            .filter_map(|s| s.event.clone())
            .collect()
    }

    pub fn delivered_ids(&self) -> Vec<String> {
        self.delivered().iter().map(|e| e.id().to_owned()).collect()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

pub struct TestSink {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    behaviour: Arc<Mutex<Behaviour>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestSink {
    /// A sink on a fresh port.
    pub async fn start(
        behaviour: impl FnMut(&Method, Option<&Event>, usize) -> Reply + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, None, behaviour)
    }

    /// An HTTPS sink on a fresh port, presenting the certificate of `tls`; [`Self::url`]
    /// still says `http`, use [`Self::https_url`].
    pub async fn start_tls(
        tls: tokio_rustls::TlsAcceptor,
        behaviour: impl FnMut(&Method, Option<&Event>, usize) -> Reply + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, Some(tls), behaviour)
    }

    /// `https://<host>:<port>/hook`, for a sink started with [`Self::start_tls`].
    pub fn https_url(&self, host: &str) -> String {
        format!("https://{host}:{}/hook", self.addr.port())
    }

    /// A sink on a given port (to bring a "down" sink up).
    pub async fn start_on(
        addr: SocketAddr,
        behaviour: impl FnMut(&Method, Option<&Event>, usize) -> Reply + Send + 'static,
    ) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, None, behaviour)
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Replaces the behaviour.
    pub fn set_behaviour(
        &self,
        behaviour: impl FnMut(&Method, Option<&Event>, usize) -> Reply + Send + 'static,
    ) {
        *self.behaviour.lock().unwrap() = Box::new(behaviour);
    }

    fn serve(
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        behaviour: impl FnMut(&Method, Option<&Event>, usize) -> Reply + Send + 'static,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let behaviour: Arc<Mutex<Behaviour>> = Arc::new(Mutex::new(Box::new(behaviour)));
        let (st, bh) = (state.clone(), behaviour.clone());
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, behaviour) = (st.clone(), bh.clone());
                let tls = tls.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (state, behaviour) = (state.clone(), behaviour.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await?.to_bytes();
                            let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            state.max_in_flight.fetch_max(now, Ordering::SeqCst);
                            let n = state.requests.fetch_add(1, Ordering::SeqCst);
                            let event = if parts.method == Method::OPTIONS {
                                None
                            } else {
                                cloudevent::http::decode(&parts.headers, body)
                                    .ok()
                                    .map(|m| m.into_events().remove(0))
                            };
                            let reply =
                                (behaviour.lock().unwrap())(&parts.method, event.as_ref(), n);
                            state.seen.lock().unwrap().push(Seen {
                                method: parts.method.clone(),
                                headers: parts.headers.clone(),
                                event,
                                status: reply.status,
                                at: Instant::now(),
                            });
                            if !reply.delay.is_zero() {
                                tokio::time::sleep(reply.delay).await;
                            }
                            state.in_flight.fetch_sub(1, Ordering::SeqCst);
                            let mut response = Response::builder().status(reply.status);
                            for (k, v) in reply.headers {
                                response = response.header(k, v);
                            }
                            Ok::<_, hyper::Error>(
                                response
                                    .body(Full::new(Bytes::from_static(reply.body.as_bytes())))
                                    .unwrap(),
                            )
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(tls) => {
                            // A client refusing the certificate ends the handshake here.
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        TestSink {
            addr,
            state,
            behaviour,
            task,
        }
    }
}

/// A free port with nothing listening on it (a sink that is down).
pub async fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

pub fn event(i: usize) -> Event {
    Event::builder()
        .id(format!("e{i}"))
        .source("/test")
        .ty("com.example.test")
        .data_with_type(
            "application/json",
            Data::json(&serde_json::json!({ "i": i })),
        )
        .build()
        .unwrap()
}

/// A subscription with fast retries, for tests.
pub fn subscription(id: &str, sink: &str) -> Subscription {
    let mut sub = Subscription::new(id, Protocol::Http, sink);
    sub.delivery.initial_backoff = Duration::from_millis(20);
    sub.delivery.max_backoff = Duration::from_millis(200);
    sub
}

pub async fn open(dir: &std::path::Path) -> Delivery {
    Delivery::open(dir, SinkRegistry::with_defaults())
        .await
        .unwrap()
}

/// Queues `event` for `sub` and waits (up to [`PATIENCE`]) until it is dead-lettered.
pub async fn dead_letter_of(
    engine: &Delivery,
    sub: &delivery::SubscriptionId,
    event: Event,
) -> delivery::DeadLetter {
    engine
        .outbox()
        .enqueue(vec![(sub.clone(), event)])
        .await
        .unwrap();
    assert!(
        wait_until(PATIENCE, || engine
            .dead_letters(Some(sub), 10)
            .unwrap()
            .len()
            == 1)
        .await,
        "no dead letter for {sub}"
    );
    engine.dead_letters(Some(sub), 10).unwrap().remove(0)
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Generous bound for a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}
