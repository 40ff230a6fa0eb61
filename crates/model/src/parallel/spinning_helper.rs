//! A second thread for decoding calls that waits for work by spinning, not sleeping.
//!
//! Decoding one sentence on two threads splits each of a step's ~20 products in two; a
//! product takes tens of microseconds. Handing the second half to a sleeping thread (a
//! rayon pool's, a channel's) costs a futex wake-up on the way there and another on the
//! way back, each about as long as the half itself: `perf` put a fifth of beam-5 decoding
//! one sentence at a time in the kernel's scheduler (2026-12-07). This thread spins on an
//! atomic counter between jobs instead (as OpenMP's active wait does for CTranslate2),
//! and sleeps only after [`SPIN`] without work. A job it has not taken by the time the
//! caller's own half is done (the helper asleep, or not scheduled) is run by the caller:
//! waiting for the wake-up had made `s2s serve`'s p99 11–12 ms for a Tatoeba GRU run, its
//! p50 1.3 ms (2026-12-07).
//!
//! One helper thread serves the whole process: started on first use, parked when idle,
//! and had by one call at a time ([`with_helper`]). A thread started for each call cost
//! more than it saved in a server with many threads: `s2s serve`'s one-client latency for
//! a Tatoeba GRU run went from 1.5 to 4 ms after a burst of concurrent requests
//! (2026-12-07). Safe Rust: a job owns what it needs (a copy of the rows, a shared handle
//! on the weights), so nothing is handed over unchecked.

use std::any::Any;
use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long the helper spins without work before it sleeps (until the next job).
const SPIN: Duration = Duration::from_micros(300);

/// A job, its result's type erased: each call site has its own.
type Job = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;

/// What the calling thread and the helper share: one job slot, one result slot and their
/// counters.
struct Shared {
    job: Mutex<Option<Job>>,
    result: Mutex<Option<thread::Result<Box<dyn Any + Send>>>>,
    /// Jobs posted, and jobs done, so far.
    posted: AtomicUsize,
    done: AtomicUsize,
    /// The helper is about to sleep or sleeping: a new job must wake it.
    sleeping: AtomicBool,
}

/// The process's one helper: what it shares with the calls.
static SHARED: Shared = Shared {
    job: Mutex::new(None),
    result: Mutex::new(None),
    posted: AtomicUsize::new(0),
    done: AtomicUsize::new(0),
    sleeping: AtomicBool::new(false),
};

fn lock<V>(m: &Mutex<V>) -> MutexGuard<'_, V> {
    // A job's panic is caught before it can poison either slot; a poisoned slot still
    // holds a whole value.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The calling thread's handle on the helper, for one call: [`Helper::join`] runs one
/// closure on each thread. Not `Sync`: one thread posts jobs, one at a time.
pub struct Helper<'a> {
    thread: &'a Thread,
    not_sync: PhantomData<Cell<()>>,
}

impl Helper<'_> {
    /// Runs `there` on the helper thread while `here` runs on this one, and returns both
    /// results once both are done (also when `here` panics: the helper's job ends first);
    /// if the helper has not taken `there` by the time `here` is done, `there` runs here
    /// after it. A panic in either resumes on this thread. `here` must not join the helper
    /// itself (it would replace the job posted).
    pub fn join<A, T: Send + 'static>(
        &self,
        here: impl FnOnce() -> A,
        there: impl FnOnce() -> T + Send + 'static,
    ) -> (A, T) {
        let mut slot = lock(&SHARED.job);
        debug_assert!(slot.is_none(), "a job posted while another waits");
        *slot = Some(Box::new(move || Box::new(there()) as Box<dyn Any + Send>));
        drop(slot);
        let want = SHARED.posted.fetch_add(1, Ordering::SeqCst) + 1;
        if SHARED.sleeping.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        let a = catch_unwind(AssertUnwindSafe(here));
        // A job the helper has not taken by now waits on a sleeping or descheduled thread
        // (a spinning one takes it within a microsecond): this thread runs it instead.
        let reclaimed = lock(&SHARED.job).take();
        let result = match reclaimed {
            Some(job) => catch_unwind(AssertUnwindSafe(job)),
            None => {
                let mut spins = 0u32;
                while SHARED.done.load(Ordering::Acquire) != want {
                    if spins < 1 << 16 {
                        spins += 1;
                        std::hint::spin_loop();
                    } else {
                        // The helper is descheduled (a loaded machine): let it run.
                        thread::yield_now();
                    }
                }
                match lock(&SHARED.result).take() {
                    Some(result) => result,
                    None => unreachable!("a finished job leaves its result"),
                }
            }
        };
        let t = match result {
            Ok(t) => t,
            Err(panic) => resume_unwind(panic),
        };
        match (a, t.downcast::<T>()) {
            (Ok(a), Ok(t)) => (a, *t),
            (Err(panic), _) => resume_unwind(panic),
            (Ok(_), Err(_)) => unreachable!("the job posted just now returns a T"),
        }
    }
}

/// The helper thread's loop: wait for a job, run it, leave its result; for the life of
/// the process.
fn serve() {
    let mut seen = 0;
    loop {
        let since = Instant::now();
        let mut spins = 0u32;
        while SHARED.posted.load(Ordering::Acquire) == seen {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) && since.elapsed() > SPIN {
                SHARED.sleeping.store(true, Ordering::SeqCst);
                // A job posted after this check finds `sleeping` set and unparks.
                if SHARED.posted.load(Ordering::SeqCst) == seen {
                    thread::park();
                }
                SHARED.sleeping.store(false, Ordering::SeqCst);
            } else {
                std::hint::spin_loop();
            }
        }
        seen += 1;
        // No job: its caller ran it (or, posted since, a later one was run in its turn);
        // the result slot is left alone.
        if let Some(job) = lock(&SHARED.job).take() {
            *lock(&SHARED.result) = Some(catch_unwind(AssertUnwindSafe(job)));
        }
        SHARED.done.store(seen, Ordering::Release);
    }
}

/// The helper thread, started on first use; `None` if the system would not start it.
fn helper_thread() -> Option<&'static Thread> {
    static THREAD: OnceLock<Option<Thread>> = OnceLock::new();
    THREAD
        .get_or_init(|| thread::Builder::new().name("s2s-helper".into()).spawn(serve).ok().map(|h| h.thread().clone()))
        .as_ref()
}

/// Whether a call in this process has the helper now.
static HELPING: AtomicBool = AtomicBool::new(false);

/// Lets the next call have the helper when this one ends, by return or by panic.
struct HelpingEnds;

impl Drop for HelpingEnds {
    fn drop(&mut self) {
        HELPING.store(false, Ordering::Release);
    }
}

/// Runs `f` with the helper thread, or with `None` (the work then stays on this thread)
/// when another call in the process has it now, or when the system would not start it.
/// One call at a time: calls that run at once (a server's requests) already keep the
/// cores busy, and a spinning helper each took the cores from them (`s2s serve`, a GRU
/// run, 8 clients: 77 requests/s against 730 with rayon's one shared helper, 2026-12-07).
pub fn with_helper<R>(f: impl FnOnce(Option<&Helper<'_>>) -> R) -> R {
    if HELPING.swap(true, Ordering::AcqRel) {
        return f(None);
    }
    let _ends = HelpingEnds;
    match helper_thread() {
        Some(thread) => f(Some(&Helper { thread, not_sync: PhantomData })),
        None => f(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` with the helper once this test's turn comes (under `cargo test` other
    /// tests' calls share the process and may have it).
    fn with_turn<R>(f: impl Fn(&Helper<'_>) -> R) -> R {
        loop {
            if let Some(r) = with_helper(|h| h.map(&f)) {
                return r;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Jobs come back in order, whichever thread ran them: many hand-overs in a row, and
    /// after a sleep (the helper parks; the first job after it is run here unless the
    /// helper wakes first) lose none.
    #[test]
    fn jobs_come_back_in_order() {
        let data: std::sync::Arc<Vec<u64>> = std::sync::Arc::new((0..1000).collect());
        let total = with_turn(|helper| {
            let mut total = 0u64;
            for i in 0..2000u64 {
                let data = data.clone();
                let (a, b) = helper.join(|| i, move || data.iter().sum::<u64>() + i);
                total += a + b;
                if i % 500 == 0 {
                    thread::sleep(SPIN * 4);
                }
            }
            total
        });
        let sum: u64 = data.iter().sum();
        assert_eq!(total, (0..2000u64).map(|i| 2 * i + sum).sum::<u64>());
    }

    /// While this thread is busy, the job runs on the helper (awake, or woken from its
    /// sleep).
    #[test]
    fn a_job_runs_on_the_helper_while_this_thread_works() {
        let here = thread::current().id();
        for pause in [Duration::ZERO, SPIN * 4] {
            thread::sleep(pause);
            let ran_on = with_turn(|helper| {
                let started = std::sync::Arc::new(AtomicBool::new(false));
                let flag = started.clone();
                let wait = || {
                    let since = Instant::now();
                    while !started.load(Ordering::Acquire) && since.elapsed() < Duration::from_secs(5) {
                        std::hint::spin_loop();
                    }
                };
                helper
                    .join(wait, move || {
                        flag.store(true, Ordering::Release);
                        thread::current().id()
                    })
                    .1
            });
            assert_ne!(ran_on, here, "after a pause of {pause:?}");
        }
    }

    /// A job's panic comes back to the caller, a panic here waits for the helper's job,
    /// and the helper serves the next call either way.
    #[test]
    fn panics_resume_on_the_caller_and_the_helper_goes_on() {
        let job = catch_unwind(|| with_turn(|helper| helper.join(|| 1, || panic!("job failed"))));
        assert!(job.is_err());
        let here = catch_unwind(|| with_turn(|helper| helper.join(|| panic!("here failed"), || 2)));
        assert!(here.is_err());
        assert_eq!(with_turn(|helper| helper.join(|| 3, || 4)), (3, 4));
    }

    /// One call at a time has the helper: a call that starts while another has it runs
    /// alone, and the next call after them gets it again.
    #[test]
    fn one_call_at_a_time_has_the_helper() {
        let inner = with_turn(|_outer| with_helper(|inner| inner.is_some()));
        assert!(!inner, "the inner call runs alone");
        assert_eq!(with_turn(|helper| helper.join(|| 5, || 6)), (5, 6), "free again");
    }
}
