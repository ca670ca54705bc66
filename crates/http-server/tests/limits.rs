//! The listener's limits over real sockets, with a raw TCP client so nothing between the test
//! and the server hides what a slow or greedy client does.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use http_server::{HttpResponse, Limits, RequestId, read_body, serve};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};

/// Echoes the body's length and the request id, after reading the body through the stack.
async fn handler(request: Request<Incoming>) -> HttpResponse {
    let id = request.extensions().get::<RequestId>().cloned();
    match read_body(request, 1024).await {
        Ok((_, body)) => {
            let text = format!(
                "{} {}",
                body.len(),
                id.map(|i| i.to_string()).unwrap_or_default()
            );
            http::Response::new(Full::new(Bytes::from(text)))
        }
        Err(problem) => problem.into_response(),
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: Limits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(serve("test", listener, limits, handler, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            done,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        timeout(Duration::from_secs(10), self.done)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

fn limits() -> Limits {
    Limits {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(3),
        max_connections: 64,
        shutdown_grace: Duration::from_secs(5),
    }
}

const GET: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";

/// Reads one response (head and a body of `Content-Length` bytes) from `stream`.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a whole response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// Waits (bounded) for the server to close `stream`; returns how long it took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut chunk = [0u8; 1024];
    loop {
        match timeout(limit, stream.read(&mut chunk)).await {
            Err(_) => panic!("still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_half_sent_header_is_closed_within_the_header_timeout() {
    let server = Server::start(limits()).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // The bounds leave room for a loaded machine; without the deadline the connection stays
    // open indefinitely.
    let took = closed_within(&mut slow, Duration::from_secs(10)).await;
    assert!(took <= Duration::from_secs(3), "closed after {took:?}");

    // A connection that sends nothing at all gets the same deadline.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(10)).await;
    assert!(took <= Duration::from_secs(3), "closed after {took:?}");

    // Trickling the header a byte at a time does not reset the deadline.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    let start = Instant::now();
    let mut closed = false;
    for byte in b"POST / HTTP/1.1\r\nHost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" {
        if trickle.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !closed {
        closed_within(&mut trickle, Duration::from_secs(5)).await;
    }
    assert!(
        start.elapsed() <= Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );

    // Meanwhile a well-behaved client is served.
    let mut good = TcpStream::connect(server.addr).await.unwrap();
    good.write_all(GET).await.unwrap();
    assert!(read_response(&mut good).await.starts_with("HTTP/1.1 200"));
    server.stop().await;
}

#[tokio::test]
async fn a_slow_body_is_cut_off_with_408() {
    let server = Server::start(limits()).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .unwrap();
    let start = Instant::now();
    let response = timeout(Duration::from_secs(5), read_response(&mut slow))
        .await
        .expect("answered");
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("application/problem+json"));
    assert!(
        start.elapsed() <= Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    closed_within(&mut slow, Duration::from_secs(2)).await;
    server.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(limits()).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    // Three requests on one connection, 1.5 s apart: longer than the header timeout (1 s),
    // shorter than the idle timeout (3 s), so keep-alive works as it should.
    for _ in 0..3 {
        conn.write_all(GET).await.unwrap();
        assert!(read_response(&mut conn).await.starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // About 1.5 s of the idle timeout remain; bounds leave room for a loaded machine.
    let took = closed_within(&mut conn, Duration::from_secs(10)).await;
    assert!(
        took <= Duration::from_secs(4),
        "closed {took:?} after the last wait"
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_while_served_ones_keep_working() {
    let server = Server::start(Limits {
        max_connections: 2,
        idle_timeout: Duration::from_secs(30),
        header_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    for c in [&mut first, &mut second] {
        c.write_all(GET).await.unwrap();
        assert!(read_response(c).await.starts_with("HTTP/1.1 200"));
    }
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(GET).await.unwrap();
    let waiting = timeout(Duration::from_millis(700), read_response(&mut third)).await;
    assert!(waiting.is_err(), "the connection over the cap was served");
    for c in [&mut first, &mut second] {
        c.write_all(GET).await.unwrap();
        assert!(read_response(c).await.starts_with("HTTP/1.1 200"));
    }
    drop(first);
    let served = timeout(Duration::from_secs(5), read_response(&mut third))
        .await
        .expect("served once a slot is free");
    assert!(served.starts_with("HTTP/1.1 200"));
    server.stop().await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_made_up() {
    let server = Server::start(limits()).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    conn.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\nContent-Length: 0\r\n\r\n",
    )
    .await
    .unwrap();
    let response = read_response(&mut conn).await;
    assert!(
        response
            .to_ascii_lowercase()
            .contains("x-request-id: abc-123"),
        "{response}"
    );
    assert!(response.ends_with("0 abc-123"), "{response}");

    conn.write_all(GET).await.unwrap();
    let response = read_response(&mut conn).await;
    let id = response
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("an id");
    assert_eq!(id.len(), 32);
    assert!(response.ends_with(&format!("2 {id}")));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let server = Server::start(limits()).await;
    let mut conn = TcpStream::connect(server.addr).await.unwrap();
    // Half the body is in when shutdown starts; the rest follows and is answered.
    conn.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    conn.write_all(b"cd").await.unwrap();
    let response = read_response(&mut conn).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(
        response.split("\r\n\r\n").nth(1).unwrap().split(' ').next(),
        Some("4")
    );
    stopping.await.unwrap();
}

/// A streamed response (Server-Sent Events) counts as a request in flight for as long as it
/// streams: neither the idle nor the header deadline cuts it, and it ends when its producer
/// ends.
#[tokio::test]
async fn a_streamed_response_outlives_the_idle_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        idle_timeout: Duration::from_millis(500),
        ..limits()
    };
    let stream_handler = |_request: Request<Incoming>| async {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            for i in 0..6 {
                tokio::time::sleep(Duration::from_millis(400)).await;
                if tx
                    .send(Bytes::from(format!("data: {i}\n\n")))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        http_server::Streaming::response(http::StatusCode::OK, "text/event-stream", rx)
    };
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve("test", listener, limits, stream_handler, async {
        let _ = stopped.await;
    }));
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // 6 chunks 400 ms apart: 2.4 s, well past the 0.5 s idle timeout.
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    let text = loop {
        let n = timeout(Duration::from_secs(10), conn.read(&mut chunk))
            .await
            .expect("the stream keeps coming")
            .unwrap();
        got.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        // Chunked encoding ends with a zero-length chunk once the producer is done.
        if n == 0 || text.ends_with("0\r\n\r\n") {
            break text;
        }
    };
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/event-stream"), "{text}");
    for i in 0..6 {
        assert!(
            text.contains(&format!("data: {i}")),
            "chunk {i} missing: {text}"
        );
    }
}
