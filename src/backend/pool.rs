//! Executors: who runs the independent tasks a kernel call is split into.
//!
//! The split of a call into tasks depends only on the shape, never on the executor, so the
//! inline, owned-pool and host-job-system executors produce bit-identical results.

use std::ffi::c_void;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

pub use super::workers::Workers;
use crate::error::{Error, Result};

/// A task body: called once for each index in `0..n_tasks`, possibly concurrently.
pub type TaskFn<'a> = &'a (dyn Fn(usize) + Sync);

/// The host's job system, as C callbacks.
///
/// `run(ctx, n_tasks, task, task_ctx)` must call `task(task_ctx, i)` exactly once for every
/// `i` in `0..n_tasks`, on any threads, and return only when all calls have returned.
#[derive(Clone, Copy)]
pub struct HostJobSystem {
    pub run: unsafe extern "C" fn(
        ctx: *mut c_void,
        n_tasks: usize,
        task: unsafe extern "C" fn(task_ctx: *mut c_void, index: usize),
        task_ctx: *mut c_void,
    ),
    pub ctx: *mut c_void,
    /// How many threads the host will use (used only to size work; 1 or more).
    pub threads: usize,
}

// SAFETY: the host promises its job system may be driven from any thread while a device
// holding it is alive (stated in the C header).
unsafe impl Send for HostJobSystem {}
unsafe impl Sync for HostJobSystem {}

/// Runs the tasks of one kernel call.
pub enum Executor {
    /// On the calling thread, one task after another.
    Inline,
    /// On the calling thread plus `threads − 1` workers the device owns (they spin briefly
    /// between calls, then park: see [`Workers`]).
    Owned(Workers),
    /// Handed to the host's job system.
    Host(HostJobSystem),
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Executor::Inline => f.write_str("Inline"),
            Executor::Owned(p) => write!(f, "Owned({} threads)", p.threads()),
            Executor::Host(h) => write!(f, "Host({} threads)", h.threads),
        }
    }
}

/// Most threads a device may own (a host job system may report more).
pub const MAX_THREADS: usize = 1024;

impl Executor {
    /// A pool of `threads` workers, or `Inline` when `threads` is 1.
    pub fn with_threads(threads: usize, spin: Duration) -> Result<Self> {
        if threads == 0 {
            return Err(Error::invalid("thread count must be at least 1, got 0"));
        }
        if threads > MAX_THREADS {
            return Err(Error::invalid(format!(
                "thread count must be at most {MAX_THREADS}, got {threads}"
            )));
        }
        if threads == 1 {
            return Ok(Executor::Inline);
        }
        Ok(Executor::Owned(Workers::start(threads, spin)?))
    }

    /// Threads that may run tasks at once.
    pub fn threads(&self) -> usize {
        match self {
            Executor::Inline => 1,
            Executor::Owned(p) => p.threads(),
            Executor::Host(h) => h.threads.max(1),
        }
    }

    /// Runs `f(i)` for every `i` in `0..n_tasks` and returns when all are done.
    pub fn run(&self, n_tasks: usize, f: TaskFn<'_>) -> Result<()> {
        if n_tasks <= 1 || matches!(self, Executor::Inline) {
            (0..n_tasks).for_each(f);
            return Ok(());
        }
        match self {
            Executor::Inline => unreachable!("handled above"),
            Executor::Owned(workers) => workers.run(n_tasks, f),
            Executor::Host(host) => run_on_host(host, n_tasks, f),
        }
    }
}

/// What the C trampoline needs to call a Rust task body.
struct HostCall<'a> {
    f: TaskFn<'a>,
    n_tasks: usize,
    done: AtomicUsize,
    panicked: AtomicBool,
}

unsafe extern "C" fn host_task_trampoline(task_ctx: *mut c_void, index: usize) {
    // SAFETY: task_ctx is the HostCall passed to `run` below, alive until `run` returns.
    let call = unsafe { &*(task_ctx as *const HostCall<'_>) };
    if index >= call.n_tasks {
        return;
    }
    // A panic must not unwind into the host's C code.
    if catch_unwind(AssertUnwindSafe(|| (call.f)(index))).is_err() {
        call.panicked.store(true, Ordering::Relaxed);
    }
    call.done.fetch_add(1, Ordering::AcqRel);
}

fn run_on_host(host: &HostJobSystem, n_tasks: usize, f: TaskFn<'_>) -> Result<()> {
    let call = HostCall {
        f,
        n_tasks,
        done: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
    };
    // SAFETY: the host contract: every task runs before `run` returns.
    unsafe {
        (host.run)(
            host.ctx,
            n_tasks,
            host_task_trampoline,
            &call as *const HostCall<'_> as *mut c_void,
        )
    };
    if call.panicked.load(Ordering::Relaxed) {
        return Err(Error::Internal(
            "a task panicked inside the host job system".into(),
        ));
    }
    let done = call.done.load(Ordering::Acquire);
    if done != n_tasks {
        return Err(Error::Internal(format!(
            "host job system ran {done} of {n_tasks} tasks before returning"
        )));
    }
    Ok(())
}
