//! Memory accounting: a counting wrapper around the global allocator (INFO `used_memory`,
//! and later `maxmemory`), plus RSS and CPU readings from the OS.
//!
//! Each thread batches its allocation deltas locally and publishes them to the global
//! counter once they exceed 32 KiB, so the hot allocation path does not bounce a shared
//! cache line between cores. The reading is therefore exact to within 32 KiB per thread.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

static ALLOCATED: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
const FLUSH_AT: i64 = 32 * 1024;

thread_local! {
    static DELTA: Cell<i64> = const { Cell::new(0) };
}

#[inline]
fn account(bytes: i64) {
    // try_with: during thread teardown the slot may be gone; count globally then.
    let flushed = DELTA.try_with(|d| {
        let v = d.get() + bytes;
        if v.abs() >= FLUSH_AT {
            d.set(0);
            ALLOCATED.fetch_add(v, Ordering::Relaxed);
        } else {
            d.set(v);
        }
    });
    if flushed.is_err() {
        ALLOCATED.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Wraps an allocator and counts the bytes it holds.
pub struct CountingAlloc<A>(pub A);

// SAFETY: delegates every call to the inner allocator unchanged; only counts sizes.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() {
            account(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        account(-(layout.size() as i64));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() {
            account(layout.size() as i64);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            account(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Bytes currently allocated (as counted by [`CountingAlloc`], if installed).
pub fn allocated() -> u64 {
    let v = ALLOCATED.load(Ordering::Relaxed).max(0) as u64;
    PEAK.fetch_max(v, Ordering::Relaxed);
    v
}

/// Like [`allocated`] without updating the peak: one relaxed load, cheap enough to run
/// before every command.
pub fn allocated_fast() -> u64 {
    ALLOCATED.load(Ordering::Relaxed).max(0) as u64
}

pub fn peak() -> u64 {
    PEAK.load(Ordering::Relaxed)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Resident set size in bytes (from /proc/self/statm on Linux).
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map(|pages| pages * page_size())
        .unwrap_or(0)
}

pub fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    if pages > 0 {
        pages as u64 * page_size()
    } else {
        0
    }
}

/// (system, user) CPU seconds used by the process.
pub fn cpu_seconds() -> (f64, f64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_stime), tv(ru.ru_utime))
}
