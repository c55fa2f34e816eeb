//! What a connection task waits on besides its socket: the engine has something for the
//! client that no request of its own produced (a pub/sub message, a CLIENT KILL, the end
//! of a CLIENT PAUSE).
//!
//! tokio's `Notify` did this, but each wait linked a waiter into its list and unlinked it
//! again under its lock, ~250 instructions of a GET at -P 1, where the task waits once per
//! request. Here a flag and the task's waker, which stays registered between waits: a
//! wait that finds the same waker costs a lock and a compare.

use ferrokv_engine::client::Waker as EngineWaker;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

/// A one-permit wake-up, as `Notify::notify_one`: a raise nobody waits for is kept for the
/// next wait. One task waits on it (a connection's), possibly from several futures.
#[derive(Default)]
pub struct Signal {
    raised: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Signal {
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        // A waker left from an earlier wait may wake the task when it is not waiting:
        // a spurious poll, which the connection loop treats as no news.
        if let Some(w) = &*self.waker.lock() {
            w.wake_by_ref();
        }
    }

    /// Ready once per raise (it takes the permit).
    pub fn poll_raised(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.raised.swap(false, Ordering::Acquire) {
            return Poll::Ready(());
        }
        {
            let mut w = self.waker.lock();
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        // A raise between the swap above and the registration found the old waker (or
        // none): look again now that ours is in place. Both sides take the lock, so a
        // raise after this swap finds our waker.
        if self.raised.swap(false, Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Waits for a raise (cancel-safe: the permit is taken only when this completes).
    pub async fn raised(&self) {
        std::future::poll_fn(|cx| self.poll_raised(cx)).await
    }
}

impl EngineWaker for Signal {
    fn wake(&self) {
        self.raise();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_raise_before_the_wait_is_kept_and_taken_once() {
        let s = Signal::default();
        s.raise();
        s.raised().await;
        let again = tokio::time::timeout(std::time::Duration::from_millis(20), s.raised()).await;
        assert!(again.is_err(), "one raise ends one wait");
    }

    #[tokio::test]
    async fn a_raise_from_another_thread_ends_the_wait() {
        let s = Arc::new(Signal::default());
        let raiser = s.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(10));
            raiser.raise();
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), s.raised()).await.expect("woken");
        t.join().expect("raiser thread");
    }
}
