//! Evaluating attribute comparisons does not touch the heap: a counting
//! allocator proves it for the hot filter shapes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cesql::{Expression, Filter, MapEvent};
use serde_json::json;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce() -> bool) -> (bool, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    (result, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn hot_paths_do_not_allocate() {
    let event = MapEvent::new()
        .with("specversion", "1.0".to_string())
        .with("id", "42".to_string())
        .with("source", "/shop/eu".to_string())
        .with("type", "com.example.order.created".to_string())
        .with("subject", "order-12345".to_string())
        .with("seq", 12)
        .with("urgent", true);

    for (src, expected) in [
        (
            "type = 'com.example.order.created' AND source LIKE '/shop/%'",
            true,
        ),
        ("type <> 'x' OR subject NOT LIKE '%5'", true),
        ("seq = 12 AND urgent AND seq > 3 AND seq IN (1, 12)", true),
        ("subject LIKE 'order-_2%4_' AND EXISTS urgent", true),
        ("id IN ('1', '2') OR type = 'nope'", false),
        ("NOT (seq = '13') AND seq LIKE '1%'", true),
    ] {
        let e = Expression::parse(src).unwrap();
        let (pass, n) = allocations_during(|| e.matches(&event));
        assert_eq!(pass, expected, "{src}");
        assert_eq!(n, 0, "{src} allocated {n} times");
        let (pass, n) = allocations_during(|| e.evaluate(&event).passes());
        assert_eq!(pass, expected, "{src}");
        assert_eq!(n, 0, "{src} allocated {n} times (evaluate)");
    }

    // The counter works: building a new string allocates.
    let e = Expression::parse("UPPER(type) = 'X'").unwrap();
    let (_, n) = allocations_during(|| e.matches(&event));
    assert!(n > 0);

    let filter = Filter::from_json(&json!({
        "all": [
            {"exact": {"type": "com.example.order.created", "seq": "12"}},
            {"prefix": {"source": "/shop/"}},
            {"suffix": {"subject": "12345"}},
            {"any": [{"exact": {"urgent": "false"}}, {"not": {"prefix": {"id": "9"}}}]},
            {"sql": "seq > 10"}
        ]
    }))
    .unwrap();
    let (pass, n) = allocations_during(|| filter.matches(&event));
    assert!(pass);
    assert_eq!(n, 0, "the dialect filter allocated {n} times");
}
