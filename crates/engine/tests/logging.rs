//! Guest stdout and `log` calls reach the host's `tracing` log, tagged with the component.

mod support;

use engine::CollectingPublisher;
use std::io::Write;
use std::sync::{Arc, Mutex};
use support::{engine, ev, load, relaxed};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn guest_output_and_logs_go_to_tracing() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = engine();
        let h = load(&engine, "guest_behaviours", relaxed());
        let mut e = ev("log");
        e.set_id("ev-77").unwrap();
        let out = h.handle(e, Arc::new(CollectingPublisher::default())).await;
        assert_eq!(out, Ok(vec![]));
        // Logged by the time the event is over, though the handler (and the store its
        // instance ran in, kept for a later event) lives on.
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("and a last line without a newline"),
            "the unterminated last line is not logged:\n{text}"
        );
        drop(h);
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let printed = text
        .lines()
        .find(|l| l.contains("printed by the guest"))
        .unwrap_or_else(|| panic!("no stdout line in:\n{text}"));
    assert!(
        printed.contains("guest_behaviours") && printed.contains("stdout"),
        "{printed}"
    );
    let logged = text
        .lines()
        .find(|l| l.contains("logged by the guest"))
        .unwrap_or_else(|| panic!("no log line in:\n{text}"));
    assert!(
        logged.contains("INFO") && logged.contains("id=\"ev-77\""),
        "{logged}"
    );
}
