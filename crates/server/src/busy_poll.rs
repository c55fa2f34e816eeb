//! Poll before parking: when the command thread runs out of work it spins for a few
//! microseconds, watching its event queue, before it sleeps in `epoll_wait`.
//!
//! Why: on virtual machines whose guest kernel does not poll before halting
//! (`/sys/module/haltpoll/parameters/guest_halt_poll_ns` is 0 on ours), every sleep of the
//! server's thread halts its virtual CPU and the next packet pays for a host round trip to
//! wake it. Under a steady stream of small requests (`-P 1`, TLS) that wake-up was a large
//! part of each request: ferrokv slept 0.17–0.20 times per TLS request against Redis's 0.06;
//! with this spin 0.02–0.03, and TLS -P 1 went from 0.94–0.99× Redis's throughput to
//! 1.00–1.10× (bench/README.md). Dragonfly's proactor spins before it sleeps for the same
//! reason.
//!
//! The spin must not cost an idle or lightly loaded server its CPU, so its length adapts as
//! the Linux guest haltpoll governor's does ([`SpinWindow`]): it grows while wake-ups come
//! soon after the thread went idle (a longer spin would have caught them) and shrinks to
//! nothing when idle periods outlast the longest allowed spin. The spin ends as soon as the
//! runtime's epoll instance has an event, so a request that arrives during it is served at
//! once. `busy-poll-us 0` turns it off (CONFIG SET too).

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first spin after a run of sleeps, and the step below which a shrinking spin stops.
const GROW_START: Duration = Duration::from_micros(10);

/// The adaptive length of the spin before a park: a state machine fed with how long each
/// idle period lasted, no clock or I/O of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpinWindow {
    current: Duration,
    max: Duration,
}

impl SpinWindow {
    pub fn new(max: Duration) -> SpinWindow {
        SpinWindow { current: Duration::ZERO, max }
    }

    /// The same window under a new maximum.
    pub fn with_max(self, max: Duration) -> SpinWindow {
        SpinWindow { current: self.current.min(max), max }
    }

    /// How long to spin before the next park.
    pub fn current(&self) -> Duration {
        self.current
    }

    /// Records one idle period, from going idle (spin included) to waking up.
    pub fn record_idle(&mut self, idle: Duration) {
        if idle <= self.current {
            // The spin caught the wake-up: it is as long as it needs to be.
        } else if idle <= self.max {
            // The thread slept, but a longer spin would have caught the wake-up.
            self.current = (self.current * 2).max(GROW_START.min(self.max)).min(self.max);
        } else {
            // Idle for longer than any spin may last: spinning was wasted CPU.
            self.current /= 2;
            if self.current < GROW_START {
                self.current = Duration::ZERO;
            }
        }
    }
}

/// The runtime hooks: `before_park` spins, `after_unpark` feeds the window. The epoll
/// descriptor is known only once the runtime is built and the maximum may change with
/// CONFIG SET, so the hooks share both through here; the window itself is the thread's.
#[derive(Clone)]
pub struct BusyPoll {
    epoll_fd: Arc<AtomicI32>,
    max_us: Arc<AtomicU64>,
}

thread_local! {
    static WINDOW: Cell<Option<SpinWindow>> = const { Cell::new(None) };
    static IDLE_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

impl BusyPoll {
    pub fn new(max: Duration) -> BusyPoll {
        let busy_poll = BusyPoll { epoll_fd: Arc::new(AtomicI32::new(-1)), max_us: Arc::default() };
        busy_poll.set_max(max);
        busy_poll
    }

    /// The longest spin from now on (`CONFIG SET busy-poll-us`); zero stops spinning.
    pub fn set_max(&self, max: Duration) {
        self.max_us.store(max.as_micros() as u64, Ordering::Relaxed);
    }

    /// Installs the hooks on a runtime builder; they do nothing until [`BusyPoll::attach`].
    pub fn install(&self, builder: &mut tokio::runtime::Builder) {
        let park = self.clone();
        let unpark = self.clone();
        builder.on_thread_park(move || park.before_park()).on_thread_unpark(move || unpark.after_unpark());
    }

    /// Finds the epoll instance the runtime created (descriptors in `after` and not in
    /// `before`; mio keeps a duplicate of its own, so several may name it) and starts
    /// spinning on it. Unless exactly one instance is new, spinning stays off.
    pub fn attach(&self, before: &[RawFd], after: &[RawFd]) -> bool {
        match new_epoll_instance(before, after, epoll_registrations) {
            Some(fd) => {
                self.epoll_fd.store(fd, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn before_park(&self) {
        let fd = self.epoll_fd.load(Ordering::Relaxed);
        let max = Duration::from_micros(self.max_us.load(Ordering::Relaxed));
        if fd < 0 || max.is_zero() {
            return;
        }
        let start = Instant::now();
        IDLE_SINCE.set(Some(start));
        let window = match WINDOW.get() {
            Some(window) if window.max == max => window,
            Some(window) => window.with_max(max),
            None => SpinWindow::new(max),
        };
        WINDOW.set(Some(window));
        let spin = window.current();
        while !spin.is_zero() && !has_event(fd) && start.elapsed() < spin {
            // On a core shared with runnable threads (a client on the same machine, a busy
            // CI box) the spin gives way to them; on an idle core this returns at once.
            std::thread::yield_now();
        }
    }

    fn after_unpark(&self) {
        if let (Some(since), Some(mut window)) = (IDLE_SINCE.take(), WINDOW.get()) {
            window.record_idle(since.elapsed());
            WINDOW.set(Some(window));
        }
    }
}

/// Whether the epoll instance has an event waiting (an epoll descriptor polls readable then).
fn has_event(epoll_fd: RawFd) -> bool {
    let mut pfd = libc::pollfd { fd: epoll_fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, a zero timeout; the descriptor is the runtime's own epoll
    // instance, open for as long as the runtime (and so these hooks) run.
    unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
}

/// The one epoll instance behind the descriptors that are new in `after`, told apart by
/// what each has registered (duplicated descriptors share one registration list).
fn new_epoll_instance(
    before: &[RawFd],
    after: &[RawFd],
    registrations: impl Fn(RawFd) -> Option<String>,
) -> Option<RawFd> {
    let mut new = after.iter().copied().filter(|fd| !before.contains(fd));
    let first = new.next()?;
    let registered = registrations(first)?;
    new.all(|fd| registrations(fd).as_ref() == Some(&registered)).then_some(first)
}

/// An epoll descriptor's registrations (its `tfd:` lines in /proc/self/fdinfo).
fn epoll_registrations(fd: RawFd) -> Option<String> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let lines: Vec<&str> = info.lines().filter(|l| l.starts_with("tfd:")).collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// The process's open epoll descriptors, read from /proc (empty where it is not mounted).
pub fn epoll_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let target = std::fs::read_link(entry.path()).ok()?;
        (target.as_os_str() == "anon_inode:[eventpoll]").then(|| entry.file_name().to_str()?.parse().ok())?
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(50);
    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn starts_off_and_grows_while_wakeups_come_soon() {
        let mut w = SpinWindow::new(MAX);
        assert_eq!(w.current(), Duration::ZERO);
        w.record_idle(us(30));
        assert_eq!(w.current(), us(10));
        w.record_idle(us(30));
        assert_eq!(w.current(), us(20));
        w.record_idle(us(30));
        assert_eq!(w.current(), us(40));
        w.record_idle(us(45));
        assert_eq!(w.current(), MAX);
        w.record_idle(us(49));
        assert_eq!(w.current(), MAX, "never past the maximum");
    }

    #[test]
    fn a_caught_wakeup_keeps_the_window() {
        let mut w = SpinWindow::new(MAX);
        w.record_idle(us(30));
        w.record_idle(us(30));
        assert_eq!(w.current(), us(20));
        w.record_idle(us(3));
        assert_eq!(w.current(), us(20));
    }

    #[test]
    fn long_idle_periods_shrink_it_to_nothing() {
        let mut w = SpinWindow::new(MAX);
        for idle in [30, 30, 30, 45] {
            w.record_idle(us(idle));
        }
        assert_eq!(w.current(), MAX);
        w.record_idle(Duration::from_millis(100));
        assert_eq!(w.current(), us(25));
        w.record_idle(Duration::from_millis(100));
        assert_eq!(w.current(), us(12) + Duration::from_nanos(500));
        w.record_idle(Duration::from_millis(100));
        assert_eq!(w.current(), Duration::ZERO, "below the first step it stops");
        w.record_idle(Duration::from_millis(100));
        assert_eq!(w.current(), Duration::ZERO);
    }

    #[test]
    fn a_small_maximum_caps_the_first_step() {
        let mut w = SpinWindow::new(us(4));
        w.record_idle(us(3));
        assert_eq!(w.current(), us(4));
        w.record_idle(us(100));
        assert_eq!(w.current(), Duration::ZERO);
    }

    #[test]
    fn a_lower_maximum_clamps_the_window() {
        let mut w = SpinWindow::new(MAX);
        for idle in [30, 30, 30, 45] {
            w.record_idle(us(idle));
        }
        let w = w.with_max(us(20));
        assert_eq!(w.current(), us(20));
        assert_eq!(w.with_max(Duration::ZERO).current(), Duration::ZERO);
    }

    #[test]
    fn zero_maximum_never_spins() {
        let mut w = SpinWindow::new(Duration::ZERO);
        w.record_idle(Duration::ZERO);
        w.record_idle(us(1));
        assert_eq!(w.current(), Duration::ZERO);
    }

    #[test]
    fn picks_the_one_new_epoll_instance() {
        let regs = |fd: RawFd| match fd {
            3 => Some("tfd: 4".to_string()),
            7 | 8 => Some("tfd: 9".to_string()),
            9 => Some("tfd: 12".to_string()),
            _ => None,
        };
        assert_eq!(new_epoll_instance(&[3], &[3], regs), None, "nothing new");
        assert_eq!(new_epoll_instance(&[3], &[3, 7], regs), Some(7));
        assert_eq!(new_epoll_instance(&[3], &[3, 7, 8], regs), Some(7), "a duplicate of the same instance");
        assert_eq!(new_epoll_instance(&[3], &[3, 7, 9], regs), None, "two instances");
        assert_eq!(new_epoll_instance(&[], &[5], regs), None, "registrations unknown");
    }

    #[test]
    fn finds_a_runtimes_epoll_and_sees_its_events() {
        // Other tests build runtimes beside this one: try until no other appeared meanwhile.
        let bp = BusyPoll::new(MAX);
        let rt = (0..20)
            .find_map(|_| {
                let before = epoll_fds();
                let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
                bp.attach(&before, &epoll_fds()).then_some(rt)
            })
            .expect("a new runtime's epoll instance is found");
        let fd = bp.epoll_fd.load(Ordering::Relaxed);
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            assert!(!has_event(fd), "nothing has happened yet");
            let _client = std::net::TcpStream::connect(addr).expect("connect");
            let deadline = Instant::now() + Duration::from_secs(5);
            while !has_event(fd) {
                assert!(Instant::now() < deadline, "a pending connection shows as an event");
                std::thread::yield_now();
            }
        });
    }
}
