//! Live heap bytes, counted by a global allocator only while a measurement runs.
//!
//! Not `allocation-counter` (which the root's tests use): it keeps per-thread books on
//! every allocation, measured or not, and that cost would land inside the timed calls of
//! the libraries that allocate most, skewing the CPU rows. Here an idle counter costs one
//! relaxed load per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to `System` unchanged; the counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Relaxed) {
            LIVE.fetch_add(layout.size() as i64, Relaxed);
        }
        // SAFETY: the caller's contract for `GlobalAlloc::alloc` is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ON.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as i64, Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ON.load(Relaxed) {
            LIVE.fetch_add(layout.size() as i64, Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.load(Relaxed) {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Net live bytes allocated while `f` ran (requested sizes, not the allocator's rounding).
/// The loops are single-threaded, so nothing else allocates meanwhile.
pub fn live_delta(f: impl FnOnce()) -> i64 {
    let before = LIVE.load(Relaxed);
    ON.store(true, Relaxed);
    f();
    ON.store(false, Relaxed);
    LIVE.load(Relaxed) - before
}

/// The heap a value holds: the bytes freed when it is dropped.
pub fn freed_by(drop_it: impl FnOnce()) -> i64 {
    -live_delta(drop_it)
}

/// The heap a freshly built member holds, before it knows anyone.
pub fn fresh<T>(build: impl FnOnce() -> T) -> i64 {
    let mut kept = None;
    let bytes = live_delta(|| kept = Some(build()));
    drop(kept);
    bytes
}
