//! The device's own worker threads: spin briefly between calls, then park.
//!
//! A batch-1 call on a 4096² int4 layer takes ~80 µs on two threads; waking a parked thread
//! costs 10–50 µs under a hypervisor, and a blocking join costs the same again on the
//! caller's side. So, like OpenMP runtimes with an active wait policy, workers spin for a
//! short while after each call (the next layer usually arrives within it) and park only
//! when the device stays idle; the caller spins on the completion count instead of
//! blocking.
//!
//! A call publishes one job: a task body and a task count. Tasks are claimed from a counter
//! tagged with the job's epoch, so a worker that wakes late can never claim a task of a
//! later job, and the job's body is only touched after a claim that proves it is alive.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::pool::TaskFn;
use crate::error::{Error, Result};

/// How long an idle worker spins before it parks.
pub const DEFAULT_SPIN: Duration = Duration::from_millis(1);

/// The high half of the claim counter: the low 32 bits of a job's epoch.
const TAG_MASK: u64 = !0xFFFF_FFFF;

/// A task body with its lifetime erased; valid while its job's epoch is live.
#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync + 'static),
    n_tasks: usize,
    /// `epoch << 32`: the claim counter's high half while this job is live.
    tag: u64,
}

// SAFETY: the pointee is `Sync`; the pointer is only dereferenced under the claim protocol.
unsafe impl Send for Job {}

struct Shared {
    /// Bumped to publish a job or to stop.
    epoch: AtomicU64,
    /// `epoch << 32 | next task index` of the live job.
    claim: AtomicU64,
    job: Mutex<Option<Job>>,
    done: AtomicUsize,
    panicked: AtomicBool,
    stop: AtomicBool,
    sleepers: AtomicUsize,
    park: Mutex<()>,
    wake: Condvar,
    spin: Duration,
}

impl Shared {
    /// Claims and runs tasks of `job` until none are left.
    fn drain(&self, job: Job) {
        // SAFETY: a successful claim of task i < n_tasks under the job's epoch means the
        // job's caller is still waiting for task i, so the body is alive.
        let f = unsafe { &*job.f };
        let mut cur = self.claim.load(Acquire);
        loop {
            let i = (cur & !TAG_MASK) as usize;
            if cur & TAG_MASK != job.tag || i >= job.n_tasks {
                return;
            }
            match self
                .claim
                .compare_exchange_weak(cur, cur + 1, AcqRel, Acquire)
            {
                Ok(_) => {
                    if catch_unwind(AssertUnwindSafe(|| f(i))).is_err() {
                        self.panicked.store(true, Relaxed);
                    }
                    self.done.fetch_add(1, Release);
                    cur = self.claim.load(Acquire);
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Waits until the epoch moves past `seen`: spin first, then park.
    fn wait_for_job(&self, seen: u64) -> u64 {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let e = self.epoch.load(Acquire);
            if e != seen {
                return e;
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) && start.elapsed() >= self.spin {
                // Announce the sleep before the last check; `bump_epoch_and_wake` stores
                // the epoch before it reads `sleepers` (both SeqCst): one sees the other.
                self.sleepers.fetch_add(1, SeqCst);
                let mut guard = self.park.lock().unwrap_or_else(|e| e.into_inner());
                while self.epoch.load(SeqCst) == seen {
                    guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                drop(guard);
                self.sleepers.fetch_sub(1, SeqCst);
            }
        }
    }

    fn bump_epoch_and_wake(&self, epoch: u64) {
        self.epoch.store(epoch, SeqCst);
        if self.sleepers.load(SeqCst) > 0 {
            let _guard = self.park.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_all();
        }
    }
}

thread_local! {
    /// The pool this thread works for (null on other threads).
    static WORKER_OF: std::cell::Cell<*const Shared> = const { std::cell::Cell::new(std::ptr::null()) };
}

fn worker_loop(shared: &Shared) {
    WORKER_OF.with(|w| w.set(shared));
    // Start from the epoch the pool was created with, not the current one: a job (or a
    // stop) published before this thread got to run must still be seen.
    let mut seen = 0;
    loop {
        seen = shared.wait_for_job(seen);
        if shared.stop.load(Acquire) {
            return;
        }
        let job = *shared.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = job {
            shared.drain(job);
        }
    }
}

/// `threads − 1` workers that run calls together with the calling thread.
pub struct Workers {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    /// One call at a time; a concurrent or nested call runs inline instead.
    submit: Mutex<()>,
    threads: usize,
}

impl Workers {
    /// Starts `threads − 1` workers (`threads` ≥ 2) that spin for `spin` when idle.
    pub fn start(threads: usize, spin: Duration) -> Result<Workers> {
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            claim: AtomicU64::new(0),
            job: Mutex::new(None),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            park: Mutex::new(()),
            wake: Condvar::new(),
            spin,
        });
        let mut workers = Workers {
            shared,
            handles: Vec::with_capacity(threads - 1),
            submit: Mutex::new(()),
            threads,
        };
        for i in 0..threads - 1 {
            let shared = Arc::clone(&workers.shared);
            let handle = std::thread::Builder::new()
                .name(format!("qlinear-{i}"))
                .spawn(move || worker_loop(&shared))
                .map_err(|e| {
                    Error::Unsupported(format!("could not start {threads} threads: {e}"))
                })?;
            workers.handles.push(handle);
        }
        Ok(workers)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(i)` for `i` in `0..n_tasks` on the caller and the workers.
    pub fn run(&self, n_tasks: usize, f: TaskFn<'_>) -> Result<()> {
        let Ok(_turn) = self.submit.try_lock() else {
            // Another call holds the workers (or this is a task calling back in).
            return run_inline(n_tasks, f);
        };
        let s = &*self.shared;
        let epoch = s.epoch.load(Relaxed) + 1;
        // SAFETY: only the lifetime is erased; this call does not return before every
        // claimed task has finished, and no task can be claimed after that.
        let f_static: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(f) };
        let job = Job {
            f: f_static,
            n_tasks,
            tag: epoch << 32,
        };
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
        s.done.store(0, Relaxed);
        s.panicked.store(false, Relaxed);
        s.claim.store(job.tag, SeqCst);
        s.bump_epoch_and_wake(epoch);
        s.drain(job);
        let mut spins = 0u32;
        while s.done.load(Acquire) < n_tasks {
            spins = spins.wrapping_add(1);
            if spins < 1 << 16 {
                std::hint::spin_loop();
            } else {
                // A worker was descheduled mid-task: stop burning the core it may need.
                std::thread::yield_now();
            }
        }
        if s.panicked.load(Relaxed) {
            return Err(task_panicked());
        }
        Ok(())
    }
}

fn run_inline(n_tasks: usize, f: TaskFn<'_>) -> Result<()> {
    catch_unwind(AssertUnwindSafe(|| (0..n_tasks).for_each(f))).map_err(|_| task_panicked())
}

fn task_panicked() -> Error {
    Error::Internal("a kernel task panicked".into())
}

impl Drop for Workers {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.stop.store(true, SeqCst);
        s.bump_epoch_and_wake(s.epoch.load(SeqCst) + 1);
        // A worker dropping the last handle to its own device cannot join the pool; its
        // siblings still exit on their own.
        if WORKER_OF.with(|w| w.get()) == Arc::as_ptr(&self.shared) {
            return;
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn count_runs(w: &Workers, n_tasks: usize) -> Vec<u32> {
        let hits: Vec<AtomicU32> = (0..n_tasks).map(|_| AtomicU32::new(0)).collect();
        w.run(n_tasks, &|i| {
            hits[i].fetch_add(1, Relaxed);
        })
        .unwrap();
        hits.into_iter().map(|h| h.into_inner()).collect()
    }

    #[test]
    fn every_task_runs_exactly_once_across_many_calls() {
        for spin in [Duration::ZERO, DEFAULT_SPIN] {
            let w = Workers::start(4, spin).unwrap();
            for call in 0..2000 {
                let n = call % 67;
                assert_eq!(count_runs(&w, n), vec![1; n], "call {call}, spin {spin:?}");
            }
        }
    }

    #[test]
    fn dropping_at_once_does_not_wait_for_unstarted_workers() {
        // Workers that have not run yet must still see the stop (this used to hang).
        for _ in 0..200 {
            drop(Workers::start(3, Duration::ZERO).unwrap());
        }
    }

    #[test]
    fn concurrent_and_nested_calls_run_every_task() {
        let w = Workers::start(3, DEFAULT_SPIN).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..300 {
                        assert_eq!(count_runs(&w, 9), vec![1; 9]);
                    }
                });
            }
        });
        let inner = AtomicU32::new(0);
        w.run(4, &|_| {
            w.run(5, &|_| {
                inner.fetch_add(1, Relaxed);
            })
            .unwrap();
        })
        .unwrap();
        assert_eq!(inner.into_inner(), 20);
    }

    #[test]
    fn a_panicking_task_is_an_error_and_the_pool_survives() {
        let w = Workers::start(2, DEFAULT_SPIN).unwrap();
        let r = w.run(8, &|i| assert_ne!(i, 5, "task 5 fails"));
        assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
        assert_eq!(count_runs(&w, 8), vec![1; 8]);
    }
}
