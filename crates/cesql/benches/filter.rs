//! Throughput of compiled CESQL expressions and dialect filters against a
//! typical event (target: ≥ 5M evaluations/s per core).
//!
//! Each benchmark runs twice: group `filter` measures wall time, group
//! `filter_cpu` (Linux) the CPU time of the benchmarking thread, which stays
//! meaningful on a machine shared with other jobs.

use std::borrow::Cow;
use std::hint::black_box;

use cesql::{EventAttributes, Expression, Filter, MapEvent, Value};
use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn typical_event() -> MapEvent {
    MapEvent::new()
        .with("specversion", "1.0".to_string())
        .with("id", "7d2f1c0e-4b1a-4e57-9a8e-3f0c2d9b6a11".to_string())
        .with("source", "/shop/eu-west/orders".to_string())
        .with("type", "com.example.order.created".to_string())
        .with("subject", "order-12345".to_string())
        .with("time", "2026-11-27T12:00:00Z".to_string())
        .with("datacontenttype", "application/json".to_string())
        .with("tenant", "acme".to_string())
}

/// An event with typed fields, read with a `match` on the name: the shape of
/// the runtime's CloudEvent implementation of the trait.
struct StructEvent {
    id: String,
    source: String,
    ty: String,
    subject: Option<String>,
    time: Option<String>,
    datacontenttype: Option<String>,
    extensions: Vec<(String, String)>,
}

fn s(v: &str) -> Option<Value<'_>> {
    Some(Value::String(Cow::Borrowed(v)))
}

impl EventAttributes for StructEvent {
    fn attribute(&self, name: &str) -> Option<Value<'_>> {
        match name {
            "specversion" => s("1.0"),
            "id" => s(&self.id),
            "source" => s(&self.source),
            "type" => s(&self.ty),
            "subject" => self.subject.as_deref().and_then(s),
            "time" => self.time.as_deref().and_then(s),
            "datacontenttype" => self.datacontenttype.as_deref().and_then(s),
            _ => self
                .extensions
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| s(v)),
        }
    }
}

fn typical_struct_event() -> StructEvent {
    StructEvent {
        id: "7d2f1c0e-4b1a-4e57-9a8e-3f0c2d9b6a11".into(),
        source: "/shop/eu-west/orders".into(),
        ty: "com.example.order.created".into(),
        subject: Some("order-12345".into()),
        time: Some("2026-11-27T12:00:00Z".into()),
        datacontenttype: Some("application/json".into()),
        extensions: vec![("tenant".into(), "acme".into())],
    }
}

fn bench<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let event = typical_event();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));

    let sql = Expression::parse("type = 'com.example.order.created' AND source LIKE '/shop/%'")
        .expect("valid expression");
    assert!(sql.matches(&event));
    group.bench_function("cesql_type_eq_and_source_like", |b| {
        b.iter(|| black_box(&sql).matches(black_box(&event)))
    });
    group.bench_function("cesql_evaluate_with_value", |b| {
        b.iter(|| black_box(&sql).evaluate(black_box(&event)).passes())
    });

    let dialects = Filter::from_json(&json!({
        "all": [
            {"exact": {"type": "com.example.order.created"}},
            {"prefix": {"source": "/shop/"}},
            {"suffix": {"subject": "12345"}},
            {"any": [
                {"exact": {"tenant": "globex"}},
                {"prefix": {"datacontenttype": "application/"}}
            ]}
        ]
    }))
    .expect("valid filter");
    assert!(dialects.matches(&event));
    group.bench_function("dialects_all_any_five_clauses", |b| {
        b.iter(|| black_box(&dialects).matches(black_box(&event)))
    });

    let struct_event = typical_struct_event();
    assert!(sql.matches(&struct_event) && dialects.matches(&struct_event));
    group.bench_function("struct_event/cesql_type_eq_and_source_like", |b| {
        b.iter(|| black_box(&sql).matches(black_box(&struct_event)))
    });
    group.bench_function("struct_event/dialects_all_any_five_clauses", |b| {
        b.iter(|| black_box(&dialects).matches(black_box(&struct_event)))
    });

    let mixed = Filter::from_json_list(&[
        json!({"prefix": {"type": "com.example."}}),
        json!({"sql": "subject LIKE 'order-%' AND tenant IN ('acme', 'initech')"}),
    ])
    .expect("valid filters");
    assert!(mixed.matches(&event));
    group.bench_function("dialects_with_sql", |b| {
        b.iter(|| black_box(&mixed).matches(black_box(&event)))
    });

    // A yardstick for the machine's speed while the benchmark ran: one
    // comparison of two 25-byte strings (a few ns on an idle core).
    let (a, b) = (
        "com.example.order.created".to_string(),
        "com.example.order.createe".to_string(),
    );
    group.bench_function("yardstick_compare_25_byte_strings", |bench| {
        bench.iter(|| black_box(&a) == black_box(&b))
    });
    group.finish();
}

fn wall_time(c: &mut Criterion) {
    bench(c, "filter");
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod cpu {
    //! A criterion measurement of the calling thread's CPU time.

    use criterion::measurement::{Measurement, ValueFormatter, WallTime};

    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }

    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

    fn now_ns() -> u64 {
        let mut t = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid, writable timespec.
        unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
        (t.tv_sec as u64) * 1_000_000_000 + t.tv_nsec as u64
    }

    static NANOSECONDS: WallTime = WallTime;

    /// CPU time of the benchmarking thread, in nanoseconds.
    pub struct ThreadCpuTime;

    impl Measurement for ThreadCpuTime {
        type Intermediate = u64;
        type Value = u64;
        fn start(&self) -> u64 {
            now_ns()
        }
        fn end(&self, start: u64) -> u64 {
            now_ns().saturating_sub(start)
        }
        fn add(&self, a: &u64, b: &u64) -> u64 {
            a + b
        }
        fn zero(&self) -> u64 {
            0
        }
        fn to_f64(&self, v: &u64) -> f64 {
            *v as f64
        }
        fn formatter(&self) -> &dyn ValueFormatter {
            NANOSECONDS.formatter()
        }
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn cpu_time(c: &mut Criterion<cpu::ThreadCpuTime>) {
    bench(c, "filter_cpu");
}

criterion_group!(wall, wall_time);

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
criterion_group! {
    name = cpu_group;
    config = Criterion::default().with_measurement(cpu::ThreadCpuTime);
    targets = cpu_time
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn cpu_group() {}

criterion_main!(wall, cpu_group);
