//! The echo handler in the smallest shape a component can have: `no_std`, written against the
//! WIT bindings directly, importing nothing. A Rust guest built with std imports 19 WASI
//! functions (stdio, environment, exit: std's panic and print paths need them) and so carries
//! two helper core modules besides its own; this one is a single core module.
//!
//! It is not a model for handlers (use the SDK): the engine benchmark runs it next to the
//! SDK's echo to show what the component's shape costs per event and what the host itself
//! costs (`cargo bench -p spindle-engine --bench handle`).

#![no_std]

extern crate alloc;

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;

wit_bindgen::generate!({
    world: "handler",
    path: "../../../wit",
    generate_all,
});

struct Echo;

impl Guest for Echo {
    fn handle(event: Event) -> Result<Vec<Event>, HandlerError> {
        Ok(alloc::vec![event])
    }
}

export!(Echo);

unsafe extern "C" {
    /// Where the linker put the end of static data: the heap starts here.
    static __heap_base: u8;
}

/// Every event runs in a fresh instance, so memory is never reused within one: a bump
/// allocator that never frees is all this guest needs.
struct Bump {
    next: Cell<usize>,
}

// SAFETY: a component instance is single-threaded.
unsafe impl Sync for Bump {}

const PAGE: usize = 65536;

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut next = self.next.get();
        if next == 0 {
            next = &raw const __heap_base as usize;
        }
        let start = (next + layout.align() - 1) & !(layout.align() - 1);
        let Some(end) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        let have = core::arch::wasm32::memory_size(0) * PAGE;
        if end > have
            && core::arch::wasm32::memory_grow(0, (end - have).div_ceil(PAGE)) == usize::MAX
        {
            return core::ptr::null_mut();
        }
        self.next.set(end);
        start as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump { next: Cell::new(0) };

/// The canonical ABI's allocator export, which the bindings' `realloc` feature would bring
/// with std.
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> *mut u8 {
    let Ok(layout) = Layout::from_size_align(new_size, align) else {
        return core::ptr::null_mut();
    };
    // SAFETY: `layout` is valid; the copy stays within both blocks.
    unsafe {
        let new = ALLOCATOR.alloc(layout);
        if !old.is_null() && !new.is_null() {
            core::ptr::copy_nonoverlapping(old, new, old_size.min(new_size));
        }
        new
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
