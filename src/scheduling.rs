//! Scheduling hints for the threads a request waits on.
//!
//! Linux's EEVDF scheduler (6.6 and later) lets the task on a core run out its slice (3 ms by
//! default, checked at the timer tick: 4 ms at `CONFIG_HZ=250`) before a task that just woke
//! up may take the core, unless the woken task asked for a shorter slice (6.12 and later).
//! A refresh is a chain of such wake-ups: the runtime thread that runs its store work, then
//! the connection thread that runs each statement, then the runtime thread again, one after
//! the other while the write gate is held. Under a login flood every core is busy with HTTP
//! workers and the load itself, so each wake-up waited up to a whole slice behind them.
//!
//! The threads of the store runtime and of the SQLite connections therefore ask for a
//! `SHORT_SLICE` slice. This changes no thread's share of the CPU (their weight, which nice
//! sets, stays as it was), only how soon they run once woken, and needs no privilege.
//! Measured (BENCHMARKS.md, 2026-12-01 fourth session): refresh p99 under the 256-connection
//! flood 18–24 ms without, 15–18 ms with, over seven runs each.
//!
//! Elsewhere (other systems, older kernels, a refusing sandbox) the request fails or is
//! ignored and the threads run as they would have; a failure is logged once at debug level.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The slice the latency-sensitive threads ask for: the kernel's lower bound (0.1 ms).
pub const SHORT_SLICE: Duration = Duration::from_micros(100);

/// Asks for `SHORT_SLICE` for the calling thread (the store runtime's `on_thread_start`).
pub fn prefer_short_slices() {
    request(0);
}

/// Asks for `SHORT_SLICE` for every thread of this process whose name starts with `prefix`
/// (names as the kernel keeps them: at most 15 bytes). For threads a library starts, such as
/// sqlx's SQLite connection threads, named `sqlx-sqlite-worker-N`. Thread ids are system-wide:
/// a thread that exits between the scan and the call could, in theory, have its id reused by
/// another thread of the same user in those microseconds, which would then get the short slice
/// (nothing else changes: policy, nice and flags are read back from that thread itself).
pub fn prefer_short_slices_for_threads_named(prefix: &str) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        let named = std::fs::read_to_string(task.path().join("comm"))
            .is_ok_and(|comm| comm.trim_end().starts_with(prefix));
        if named {
            request(tid);
        }
    }
}

static FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

/// `sched_setattr(tid, …)` with `SHORT_SLICE` as the slice (`sched_runtime`, which fair-class
/// threads read as their slice request since Linux 6.12; earlier kernels ignore it), keeping
/// the thread's policy, nice and flags. `tid` 0 is the calling thread.
fn request(tid: i32) {
    if let Err(e) = slice::set(tid, SHORT_SLICE)
        && !FAILURE_LOGGED.swap(true, Ordering::Relaxed)
    {
        tracing::debug!(error = %e, "a short scheduling slice was refused; threads keep the default");
    }
}

#[cfg(target_os = "linux")]
mod slice {
    use std::time::Duration;

    /// `struct sched_attr` as `sched_setattr(2)` documents it (`SCHED_ATTR_SIZE_VER0`, 48
    /// bytes; the kernel accepts any size it knows).
    #[repr(C)]
    #[derive(Default)]
    struct SchedAttr {
        size: u32,
        sched_policy: u32,
        sched_flags: u64,
        sched_nice: i32,
        sched_priority: u32,
        sched_runtime: u64,
        sched_deadline: u64,
        sched_period: u64,
    }

    /// The fair policies, whose `sched_runtime` is a slice request (`SCHED_NORMAL`,
    /// `SCHED_BATCH`). Threads an operator put under another policy (real-time, idle) are left
    /// as they are.
    const FAIR_POLICIES: [u32; 2] = [0, 3];
    /// `SCHED_FLAG_KEEP_POLICY`: the call changes no policy, whatever it says.
    const SCHED_FLAG_KEEP_POLICY: u64 = 0x08;
    /// The flags `sched_getattr` answers that `sched_setattr` takes back as they were
    /// (`SCHED_FLAG_RESET_ON_FORK`); utilisation clamps are left alone by not asking for them.
    const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;

    /// Reads thread `tid`'s attributes, then writes them back with only the slice changed:
    /// policy, nice and reset-on-fork stay. `Ok(false)` for a thread under a policy other than
    /// the fair ones (left alone).
    pub(super) fn set(tid: i32, slice: Duration) -> std::io::Result<bool> {
        let size = u32::try_from(std::mem::size_of::<SchedAttr>()).unwrap_or(48);
        let mut attr = SchedAttr::default();
        #[expect(
            unsafe_code,
            reason = "sched_getattr(2) has no safe wrapper in libc, rustix or nix"
        )]
        // SAFETY: `attr` is a valid, writable `struct sched_attr` of `size` bytes for the whole
        // call; the kernel writes at most `size` bytes; flags 0.
        let read = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                libc::c_long::from(tid),
                std::ptr::from_mut(&mut attr),
                libc::c_long::from(size),
                0 as libc::c_long,
            )
        };
        if read != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if !FAIR_POLICIES.contains(&attr.sched_policy) {
            return Ok(false);
        }
        attr.size = size;
        attr.sched_flags = (attr.sched_flags & SCHED_FLAG_RESET_ON_FORK) | SCHED_FLAG_KEEP_POLICY;
        attr.sched_runtime = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
        #[expect(
            unsafe_code,
            reason = "sched_setattr(2) has no safe wrapper in libc, rustix or nix"
        )]
        // SAFETY: `attr` is a valid, initialised `struct sched_attr` whose `size` field gives
        // its length; the kernel only reads it during the call; flags 0.
        let written = unsafe {
            libc::syscall(
                libc::SYS_sched_setattr,
                libc::c_long::from(tid),
                std::ptr::from_ref(&attr),
                0 as libc::c_long,
            )
        };
        if written == 0 {
            Ok(true)
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod slice {
    pub(super) fn set(_tid: i32, _slice: std::time::Duration) -> std::io::Result<bool> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The slice the kernel keeps for thread `tid` of this process, in ns (`se.slice` in its
    /// `sched` file); `None` on kernels that show none.
    fn slice_of(tid: &str) -> Option<u64> {
        let sched = std::fs::read_to_string(format!("/proc/self/task/{tid}/sched")).ok()?;
        sched
            .lines()
            .find(|line| line.starts_with("se.slice"))
            .and_then(|line| line.split(':').nth(1))
            .and_then(|value| value.trim().parse().ok())
    }

    fn short_ns() -> u64 {
        u64::try_from(SHORT_SLICE.as_nanos()).unwrap_or(u64::MAX)
    }

    #[test]
    fn a_thread_that_asks_gets_the_short_slice_and_keeps_its_nice() {
        let (slice, nice) = std::thread::spawn(|| {
            rustix::process::setpriority_process(None, 3).unwrap();
            prefer_short_slices();
            let tid = rustix::thread::gettid().as_raw_nonzero().to_string();
            (
                slice_of(&tid),
                rustix::process::getpriority_process(None).unwrap(),
            )
        })
        .join()
        .unwrap();
        assert_eq!(nice, 3, "the nice value is kept");
        if let Some(slice) = slice {
            assert_eq!(slice, short_ns());
        }
    }

    #[test]
    fn threads_another_library_started_get_it_by_name() {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::Builder::new()
            .name("slice-test-wrk".into())
            .spawn(move || {
                ready_tx
                    .send(rustix::thread::gettid().as_raw_nonzero().to_string())
                    .unwrap();
                let _ = done_rx.recv();
            })
            .unwrap();
        let tid = ready_rx.recv().unwrap();
        let before = slice_of(&tid);
        prefer_short_slices_for_threads_named("slice-test-w");
        let after = slice_of(&tid);
        done_tx.send(()).unwrap();
        worker.join().unwrap();
        if let (Some(before), Some(after)) = (before, after) {
            assert_ne!(before, short_ns(), "the default slice is longer");
            assert_eq!(after, short_ns());
        }
    }
}
