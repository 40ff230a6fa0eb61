//! A second thread for one decoding call that waits for work by spinning, not sleeping.
//!
//! Decoding one sentence on two threads splits each of a step's ~20 products in two; a
//! product takes tens of microseconds. Handing the second half to a sleeping thread (a
//! rayon pool's, a channel's) costs a futex wake-up on the way there and another on the
//! way back, each about as long as the half itself: `perf` put a fifth of beam-5 decoding
//! one sentence at a time in the kernel's scheduler (2026-12-07). This thread spins on an
//! atomic counter between jobs instead (as OpenMP's active wait does for CTranslate2),
//! and sleeps only after [`SPIN`] without work.
//!
//! Safe Rust: the thread is scoped to [`with_helper`], and a job owns what it needs (a
//! copy of the rows, a shared handle on the weights), so nothing is handed over unchecked.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long the helper spins without work before it sleeps (until the next job).
const SPIN: Duration = Duration::from_micros(300);

type Job<T> = Box<dyn FnOnce() -> T + Send>;

/// What the two threads share: one job slot, one result slot and their counters.
struct Shared<T> {
    job: Mutex<Option<Job<T>>>,
    result: Mutex<Option<thread::Result<T>>>,
    /// Jobs posted, and jobs done, so far.
    posted: AtomicUsize,
    done: AtomicUsize,
    /// The helper is about to sleep or sleeping: a new job must wake it.
    sleeping: AtomicBool,
    stop: AtomicBool,
}

fn lock<V>(m: &Mutex<V>) -> MutexGuard<'_, V> {
    // A job's panic is caught before it can poison either slot; a poisoned slot still
    // holds a whole value.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The calling thread's handle on its helper: [`Helper::join`] runs one closure on each.
/// Not `Sync`: one thread posts jobs, one at a time.
pub struct Helper<'a, T> {
    shared: &'a Shared<T>,
    thread: Thread,
    not_sync: PhantomData<Cell<()>>,
}

impl<T: Send> Helper<'_, T> {
    /// Runs `there` on the helper thread while `here` runs on this one, and returns both
    /// results. A panic in `there` resumes on this thread.
    pub fn join<A>(&self, here: impl FnOnce() -> A, there: impl FnOnce() -> T + Send + 'static) -> (A, T) {
        *lock(&self.shared.job) = Some(Box::new(there));
        let want = self.shared.posted.fetch_add(1, Ordering::SeqCst) + 1;
        if self.shared.sleeping.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        let a = here();
        let mut spins = 0u32;
        while self.shared.done.load(Ordering::Acquire) != want {
            if spins < 1 << 16 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                // The helper is descheduled (a loaded machine): let it run.
                thread::yield_now();
            }
        }
        match lock(&self.shared.result).take() {
            Some(Ok(t)) => (a, t),
            Some(Err(panic)) => resume_unwind(panic),
            None => unreachable!("a finished job leaves its result"),
        }
    }
}

/// The helper thread's loop: wait for a job, run it, leave its result.
fn serve<T: Send>(shared: &Shared<T>) {
    let mut seen = 0;
    loop {
        let since = Instant::now();
        let mut spins = 0u32;
        while shared.posted.load(Ordering::Acquire) == seen {
            if shared.stop.load(Ordering::Acquire) {
                return;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && since.elapsed() > SPIN {
                shared.sleeping.store(true, Ordering::SeqCst);
                // A job posted after this check finds `sleeping` set and unparks.
                if shared.posted.load(Ordering::SeqCst) == seen && !shared.stop.load(Ordering::SeqCst) {
                    thread::park();
                }
                shared.sleeping.store(false, Ordering::SeqCst);
            } else {
                std::hint::spin_loop();
            }
        }
        seen += 1;
        let result = lock(&shared.job).take().map(|job| catch_unwind(AssertUnwindSafe(job)));
        *lock(&shared.result) = result;
        shared.done.store(seen, Ordering::Release);
    }
}

/// Stops the helper when the call ends, by return or by panic (the scope then joins it).
struct StopOnDrop<'a, T> {
    shared: &'a Shared<T>,
    thread: Thread,
}

impl<T> Drop for StopOnDrop<'_, T> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Runs `f` with a helper thread for its duration, or with `None` when the system would
/// not start one (the work then stays on this thread).
pub fn with_helper<T: Send + 'static, R>(f: impl FnOnce(Option<&Helper<'_, T>>) -> R) -> R {
    let shared = Shared {
        job: Mutex::new(None),
        result: Mutex::new(None),
        posted: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        sleeping: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    };
    let shared = &shared;
    thread::scope(|scope| {
        match thread::Builder::new().name("s2s-helper".into()).spawn_scoped(scope, move || serve(shared)) {
            Ok(handle) => {
                let thread = handle.thread().clone();
                let _stop = StopOnDrop { shared, thread: thread.clone() };
                f(Some(&Helper { shared, thread, not_sync: PhantomData }))
            }
            Err(_) => f(None),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Jobs run on the other thread, in order; many hand-overs in a row and a sleep in
    /// between (the helper parks, then wakes) lose none.
    #[test]
    fn jobs_run_on_the_helper_and_come_back_in_order() {
        let data: std::sync::Arc<Vec<u64>> = std::sync::Arc::new((0..1000).collect());
        let here = thread::current().id();
        let total = with_helper(|helper| {
            let helper = helper.expect("a helper thread");
            let mut total = 0u64;
            for i in 0..2000u64 {
                let data = data.clone();
                let (a, (b, id)) = helper.join(|| i, move || (data.iter().sum::<u64>() + i, thread::current().id()));
                assert_ne!(id, here);
                total += a + b;
                if i == 1000 {
                    thread::sleep(SPIN * 4);
                }
            }
            total
        });
        let sum: u64 = data.iter().sum();
        assert_eq!(total, (0..2000u64).map(|i| 2 * i + sum).sum::<u64>());
    }

    /// A job's panic comes back to the caller, and the call still ends (no hung thread).
    #[test]
    fn a_panicking_job_resumes_on_the_caller() {
        let outcome = catch_unwind(|| {
            with_helper(|helper: Option<&Helper<'_, u32>>| {
                helper.expect("a helper thread").join(|| 1, || panic!("job failed"));
            })
        });
        assert!(outcome.is_err());
    }
}
