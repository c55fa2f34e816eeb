//! Memory accounting: a counting wrapper around the global allocator (INFO `used_memory`,
//! and `maxmemory`), plus RSS and CPU readings from the OS.
//!
//! Each thread batches its allocation deltas locally and publishes them to the global
//! counter once they exceed 32 KiB, so the hot allocation path does not bounce a shared
//! cache line between cores. The reading is therefore exact to within 32 KiB per thread.
//!
//! What is counted is the size of the block the allocator hands out, not the size asked
//! for ([`BlockSize`]): Redis's `used_memory` counts jemalloc's usable sizes, and counting
//! requests instead let RSS run about 7% further above `maxmemory` than Redis's under a
//! flood of 100-byte values (each sits in a 112-byte block).

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

/// The size of the block an allocator sets aside for a request of `size` bytes.
///
/// It must depend on the size alone, so that an allocation and its release are counted
/// alike whatever happened in between (a realloc that stays in place is then counted as if
/// it had moved: the counter stays exact, only that block's own rounding is approximate).
pub trait BlockSize {
    fn block_size(&self, size: usize) -> usize;
}

impl BlockSize for std::alloc::System {
    fn block_size(&self, size: usize) -> usize {
        size
    }
}

impl BlockSize for mimalloc::MiMalloc {
    #[inline]
    fn block_size(&self, size: usize) -> usize {
        // SAFETY: mi_good_size is a pure function of its argument.
        unsafe { libmimalloc_sys::mi_good_size(size) }
    }
}

/// Wraps an allocator and counts the bytes it holds.
pub struct CountingAlloc<A>(pub A);

impl<A: BlockSize> CountingAlloc<A> {
    #[inline]
    fn counted(&self, size: usize) -> i64 {
        self.0.block_size(size) as i64
    }
}

// SAFETY: delegates every call to the inner allocator unchanged; only counts sizes.
unsafe impl<A: GlobalAlloc + BlockSize> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() {
            account(self.counted(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        account(-self.counted(layout.size()));
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() {
            account(self.counted(layout.size()));
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            account(self.counted(new_size) - self.counted(layout.size()));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Publishes this thread's pending delta, so the global counter is current.
    fn flush() {
        let pending = DELTA.with(|d| d.replace(0));
        ALLOCATED.fetch_add(pending, Ordering::Relaxed);
    }

    /// What `CountingAlloc<MiMalloc>` charges for `n` live blocks of `size` bytes. Only
    /// this test moves the global counter: the test binary's own allocator is not counting.
    fn charged(n: usize, size: usize) -> i64 {
        let a = CountingAlloc(mimalloc::MiMalloc);
        let layout = Layout::from_size_align(size, 8).expect("valid layout");
        flush();
        let before = ALLOCATED.load(Ordering::Relaxed);
        // SAFETY: every block is freed below with the layout it was allocated with.
        let blocks: Vec<*mut u8> = (0..n).map(|_| unsafe { a.alloc(layout) }).collect();
        flush();
        let held = ALLOCATED.load(Ordering::Relaxed) - before;
        for p in blocks {
            assert!(!p.is_null());
            // SAFETY: allocated above with this layout.
            unsafe { a.dealloc(p, layout) };
        }
        flush();
        assert_eq!(ALLOCATED.load(Ordering::Relaxed), before, "freeing gives back what was charged");
        held
    }

    #[test]
    fn blocks_are_charged_at_their_size_class() {
        let a = CountingAlloc(mimalloc::MiMalloc);
        // 100-byte requests are served from larger blocks (112 bytes); 64 is a class itself.
        assert!(a.counted(100) > 100, "{}", a.counted(100));
        assert_eq!(a.counted(64), 64);
        assert_eq!(charged(10_000, 100), 10_000 * a.counted(100));
        assert_eq!(charged(10_000, 64), 10_000 * 64);
        for size in [1, 7, 1000, 4097, 100_000, 5 << 20] {
            assert!(a.counted(size) >= size as i64, "{size}");
        }
    }
}
