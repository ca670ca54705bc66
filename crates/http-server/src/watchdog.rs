//! Per-connection deadlines: how long a client may take to send a request's headers, and how
//! long a keep-alive connection may sit idle between requests.
//!
//! The connection's socket is wrapped in [`Watched`], which notes the first byte of each
//! request head; the service notes when a request starts and ends ([`Activity::request`]).
//! [`Activity::expired`] turns that into the one deadline that applies now:
//! - a request is being handled: none (its body has its own deadline, its handler its own);
//! - bytes of a request head arrived: the header deadline, from the first of them;
//! - nothing yet on a new connection: the header deadline, from the accept;
//! - between requests: the idle deadline, from the end of the last one.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::Limits;

/// Why a connection was closed by its watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// A request's headers did not arrive in time.
    Header,
    /// The connection sat idle between requests too long.
    Idle,
}

/// What a connection is doing, shared by its socket wrapper, its service and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    /// Requests being handled right now (more than one only with pipelining).
    in_flight: AtomicUsize,
    /// Requests handled so far.
    served: AtomicU64,
    /// Nanoseconds after `opened` at which the current request head began, plus one; 0 when
    /// no head is being read.
    head_started: AtomicU64,
    /// Nanoseconds after `opened` at which the last request ended.
    idle_since: AtomicU64,
    /// Wakes the watchdog when the applicable deadline may have changed.
    changed: Notify,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            changed: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Bytes arrived on the socket.
    fn bytes_in(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == 0
        {
            self.head_started.store(self.now() + 1, Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// A request's head was parsed and its handler called; the guard marks its end.
    pub(crate) fn request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        RequestGuard(self.clone())
    }

    /// Resolves when the deadline that applies now has passed.
    pub(crate) async fn expired(&self, limits: &Limits) -> Expiry {
        loop {
            let deadline = if self.in_flight.load(Ordering::Acquire) > 0 {
                None
            } else {
                let head = self.head_started.load(Ordering::Acquire);
                if head != 0 {
                    Some((head - 1, limits.header_timeout, Expiry::Header))
                } else if self.served.load(Ordering::Acquire) == 0 {
                    Some((0, limits.header_timeout, Expiry::Header))
                } else {
                    let since = self.idle_since.load(Ordering::Acquire);
                    Some((since, limits.idle_timeout, Expiry::Idle))
                }
            };
            match deadline {
                None => self.changed.notified().await,
                Some((since, timeout, expiry)) => {
                    let at = self.opened + Duration::from_nanos(since) + timeout;
                    if Instant::now() >= at {
                        return expiry;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = self.changed.notified() => {}
                    }
                }
            }
        }
    }
}

/// Marks the end of a request when dropped (also when its handler was cancelled).
pub(crate) struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.idle_since.store(activity.now(), Ordering::Release);
        activity.served.fetch_add(1, Ordering::AcqRel);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        activity.changed.notify_one();
    }
}

/// A socket that reports incoming bytes to its connection's [`Activity`].
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_in();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            ..Limits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_new_connection_gets_the_header_deadline() {
        let a = Activity::new();
        let start = Instant::now();
        assert_eq!(a.expired(&limits()).await, Expiry::Header);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn between_requests_the_idle_deadline_applies_until_a_head_begins() {
        let a = Activity::new();
        drop(a.request());
        let start = Instant::now();
        let l = limits();
        let watch = a.expired(&l);
        tokio::pin!(watch);
        tokio::select! {
            _ = &mut watch => panic!("expired early"),
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        a.bytes_in();
        assert_eq!(watch.await, Expiry::Header);
        assert_eq!(start.elapsed(), Duration::from_secs(7));

        let b = Activity::new();
        drop(b.request());
        let start = Instant::now();
        assert_eq!(b.expired(&l).await, Expiry::Idle);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_while_a_request_runs() {
        let a = Activity::new();
        let guard = a.request();
        let l = limits();
        let watch = a.expired(&l);
        tokio::pin!(watch);
        tokio::select! {
            _ = &mut watch => panic!("expired while a request ran"),
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
        drop(guard);
        let start = Instant::now();
        assert_eq!(watch.await, Expiry::Idle);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
}
