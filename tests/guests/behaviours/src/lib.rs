//! One guest, many behaviours chosen by the event type, so the engine tests cover good and
//! bad handlers with a single build. Each event runs in a fresh instance, so a bad behaviour
//! cannot affect the next event.

use serde::{Deserialize, Serialize};
use spindle_sdk::{Error, Event, PublishError, Result, cloudevents_component};
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Deserialize)]
struct Order {
    name: String,
    qty: u32,
}

#[derive(Serialize)]
struct Greeting {
    greeting: String,
    double: u32,
}

#[cloudevents_component]
fn handle(event: Event) -> Result<Vec<Event>> {
    match event.ty() {
        "json.transform" => {
            let order: Order = event.json()?;
            let out = Event::new("json.transformed", "/behaviours")
                .with_subject(event.id().to_owned())
                .with_json(&Greeting {
                    greeting: format!("hello {}", order.name),
                    double: order.qty * 2,
                })?;
            Ok(vec![out])
        }
        "fanout" => Ok((0..3)
            .map(|i| {
                Event::new("fanout.item", "/behaviours")
                    .with_subject(i.to_string())
                    .with_extension("index", i)
            })
            .collect()),
        "publish" => {
            spindle_sdk::publish("audit", event.clone().with_type("audited").with_fresh_id())?;
            let unknown = matches!(
                spindle_sdk::publish("undeclared", event.clone()),
                Err(PublishError::UnknownOutput(_))
            );
            Ok(vec![event.with_data(
                "text/plain",
                format!("unknown-output refused: {unknown}"),
            )])
        }
        "fail.transient" => Err(Error::transient("the database is down, try later")),
        "fail.permanent" => Err(Error::permanent("this order can never be processed")),
        "panic" => panic!("boom: the guest panicked"),
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        "membomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(black_box(vec![1u8; 1 << 20]));
            }
        }
        "readfile" => {
            let path = event.subject().unwrap_or("/data/hello.txt").to_owned();
            let text = std::fs::read_to_string(&path)?;
            Ok(vec![event.with_data("text/plain", text)])
        }
        "env" => {
            let value = std::env::var("SPINDLE_GUEST_VAR").unwrap_or_else(|_| "<unset>".into());
            Ok(vec![event.with_data("text/plain", value)])
        }
        "config" => {
            let value = spindle_sdk::config::get("greeting").unwrap_or_else(|| "<none>".into());
            Ok(vec![event.with_data("text/plain", value)])
        }
        "log" => {
            println!("printed by the guest");
            // A last line without a newline, flushed to the host: logged when the event ends.
            print!("and a last line without a newline");
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            spindle_sdk::log::info("logged by the guest", &[("id", event.id())]);
            Ok(vec![])
        }
        "http.get" => {
            // GETs the URL in the subject: the answer's status and body, or the error.
            let url = event.subject().unwrap_or_default().to_owned();
            let text = match spindle_sdk::http::get(&url) {
                Ok(r) => format!("{} {}", r.status(), String::from_utf8_lossy(r.body())),
                Err(e) => format!("error: {e}"),
            };
            Ok(vec![event.with_data("text/plain", text)])
        }
        "kv.counter" => {
            // Counts events with this id in the store named by the subject, across instances.
            let label = event.subject().unwrap_or("default").to_owned();
            let key = format!("hits-{}", event.id());
            let counted = spindle_sdk::kv::Store::open(&label).and_then(|store| {
                store.set("last-id", event.id())?;
                store.increment(&key, 1)
            });
            let text = match counted {
                Ok(n) => n.to_string(),
                Err(e) => format!("error: {e}"),
            };
            Ok(vec![event.with_data("text/plain", text)])
        }
        "counter" => {
            // A global that a reused instance would carry over from the previous event.
            static CALLS: AtomicU32 = AtomicU32::new(0);
            let n = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(vec![event.with_data("text/plain", n.to_string())])
        }
        "scribble" => {
            // Writes to every page of a 512 KiB zero-initialised static area (so the memory
            // stays small enough for the host to run the next event in the same store) and
            // counts the pages it found already written: a dirty page carried over from a
            // previous instance.
            static AREA: [AtomicU32; (512 << 10) / 4] =
                [const { AtomicU32::new(0) }; (512 << 10) / 4];
            let dirty = scribble(AREA.as_ptr().cast_mut().cast(), AREA.len() * 4);
            Ok(vec![event.with_data("text/plain", dirty.to_string())])
        }
        "scribble.grow" => {
            // The same on 2 MiB the allocator takes fresh from `memory.grow` (which Wasm
            // guarantees zeroed) without clearing it: more than the host keeps resident and
            // resets in place per memory slot.
            let layout = std::alloc::Layout::from_size_align(2 << 20, 4096).unwrap();
            // SAFETY: a valid, non-zero layout; scribble stays inside the block.
            let dirty = unsafe {
                let area = std::alloc::alloc(layout);
                assert!(!area.is_null());
                let dirty = scribble(area, layout.size());
                std::alloc::dealloc(area, layout);
                dirty
            };
            Ok(vec![event.with_data("text/plain", dirty.to_string())])
        }
        // Hostile: more than the host lets one event hand it.
        "flood.publish" => {
            for i in 0..2000 {
                // Refusals are ignored on purpose: the host must fail the event anyway.
                let _ = spindle_sdk::publish("audit", event.clone().with_subject(i.to_string()));
            }
            Ok(vec![])
        }
        "flood.results" => Ok((0..5000)
            .map(|i| Event::new("flood.item", "/behaviours").with_subject(i.to_string()))
            .collect()),
        "flood.log" => {
            let line = "x".repeat(64 << 10);
            for _ in 0..5000 {
                spindle_sdk::log::info(&line, &[("k", &line)]);
            }
            Ok(vec![event])
        }
        other => Err(Error::permanent(format!("unknown behaviour {other}"))),
    }
}

/// Writes a mark to the first and last word of every 4 KiB page of `len` bytes at `area`,
/// returning how many of those words were not zero before.
fn scribble(area: *mut u8, len: usize) -> usize {
    const PAGE_WORDS: usize = 4096 / 4;
    let words = area.cast::<u32>();
    let mut dirty = 0;
    for page in 0..len / 4096 {
        for word in [0, PAGE_WORDS - 1] {
            // SAFETY: the caller gives `len` writable bytes; volatile so nothing is elided.
            unsafe {
                let p = words.add(page * PAGE_WORDS + word);
                if p.read_volatile() != 0 {
                    dirty += 1;
                }
                p.write_volatile(0x5ca1_ab1e);
            }
        }
    }
    dirty
}
