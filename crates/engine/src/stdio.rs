//! Guest stdout/stderr into the host `tracing` log, one record per line, tagged with the
//! component's name.
//!
//! Handlers run headless; printing must neither reach the host's own stdout (mixing with the
//! server's output) nor be lost.

use bytes::Bytes;
use std::sync::Arc;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept in one record; longer output is split so a guest cannot grow host memory.
const MAX_LINE: usize = 4096;

/// Which guest stream a [`GuestOutput`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// `stdout`, logged at INFO.
    Stdout,
    /// `stderr`, logged at WARN.
    Stderr,
}

/// A WASI stdout/stderr implementation that forwards lines to `tracing`.
#[derive(Debug, Clone)]
pub(crate) struct GuestOutput {
    component: Arc<str>,
    stream: Stream,
}

impl GuestOutput {
    /// An output for `component`'s `stream`.
    pub(crate) fn new(component: Arc<str>, stream: Stream) -> Self {
        Self { component, stream }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter {
            out: self.clone(),
            buf: Vec::new(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(AsyncLineWriter(LineWriter {
            out: self.clone(),
            buf: Vec::new(),
        }))
    }
}

/// Buffers bytes until a newline, then emits the line.
struct LineWriter {
    out: GuestOutput,
    buf: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(pos) = bytes.iter().position(|b| *b == b'\n') {
            self.buf.extend_from_slice(&bytes[..pos]);
            self.emit();
            bytes = &bytes[pos + 1..];
        }
        self.buf.extend_from_slice(bytes);
        while self.buf.len() >= MAX_LINE {
            let rest = self.buf.split_off(MAX_LINE);
            self.emit();
            self.buf = rest;
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.buf);
        let component = &*self.out.component;
        match self.out.stream {
            Stream::Stdout => {
                tracing::info!(target: "spindle::guest", component, stream = "stdout", "{line}")
            }
            Stream::Stderr => {
                tracing::warn!(target: "spindle::guest", component, stream = "stderr", "{line}")
            }
        }
        self.buf.clear();
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.emit();
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

/// The same writer for WASI p3's async streams.
struct AsyncLineWriter(LineWriter);

impl tokio::io::AsyncWrite for AsyncLineWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_caps_length() {
        let mut w = LineWriter {
            out: GuestOutput::new("t".into(), Stream::Stdout),
            buf: Vec::new(),
        };
        w.push(b"hello\nwor");
        assert_eq!(w.buf, b"wor");
        w.push(&vec![b'x'; MAX_LINE * 2]);
        assert!(w.buf.len() < MAX_LINE);
    }
}
