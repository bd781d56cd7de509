//! The few calls into the operating system that no safe API of std covers: whether a process
//! lives and asking it to stop, a child that stops with its parent, the address-space limit,
//! the units of /proc's CPU times and memory,
//! whether a signal is ignored, the allocator's thresholds, and loading libtorch's CUDA
//! backend. Outside the TorchScript shim (`model::torchscript::module`), this is the one
//! module allowed `unsafe` (see `[lints]` in Cargo.toml); each call says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_int};
use std::path::Path;

/// True while a process with `pid` exists (ours, or another user's we may not signal).
pub fn process_exists(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists; no memory is involved.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Sends SIGTERM to `pid` (a run then stops with a checkpoint); false if it could not be sent.
/// Pid 0 is refused: to kill(2) it means this process's whole group.
pub fn terminate(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: a signal to a process id; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGTERM) == 0 }
}

/// Makes the child `command` will start receive SIGTERM when this process dies, however it
/// dies: a task outlives no executor.
pub fn stop_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl, which
    // is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// The address-space limit (`ulimit -v`) in bytes, if one is set.
pub fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// True when `signal` is set to be ignored (inherited from the parent, as under `nohup`).
pub fn signal_is_ignored(signal: i32) -> bool {
    // SAFETY: with a null new action, sigaction only reads the current one into `current`,
    // a zeroed struct we own.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// Serves allocations up to `mmap_threshold` bytes from the heap and keeps up to
/// `trim_threshold` bytes of free heap (glibc only; elsewhere nothing happens).
pub fn set_malloc_thresholds(mmap_threshold: c_int, trim_threshold: c_int) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap_threshold);
        libc::mallopt(libc::M_TRIM_THRESHOLD, trim_threshold);
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (mmap_threshold, trim_threshold);
}

/// Why a shared library could not be loaded: the dynamic loader's own words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

/// Loads the shared library at `path` with its symbols global, for the rest of the process
/// (libtorch's CUDA backend registers itself when loaded).
pub fn load_global(path: &Path) -> Result<(), LoadError> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| LoadError("path contains a NUL byte".to_owned()))?;
    // SAFETY: dlopen with a valid NUL-terminated path; the handle is deliberately leaked so
    // that the library stays loaded for the life of the process.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if !handle.is_null() {
        return Ok(());
    }
    // SAFETY: dlerror returns a thread-local C string or null.
    let err = unsafe { libc::dlerror() };
    if err.is_null() {
        return Err(LoadError("unknown dlopen error".to_owned()));
    }
    // SAFETY: a non-null pointer from dlerror, valid until the next dl* call on this thread.
    Err(LoadError(
        unsafe { CStr::from_ptr(err) }
            .to_string_lossy()
            .into_owned(),
    ))
}

/// `cudaRuntimeGetVersion` of the CUDA runtime loaded in this process, encoded as CUDA does
/// (1000 × major + 10 × minor); None without one.
pub fn loaded_cuda_runtime_version() -> Option<i32> {
    const SYMBOL: &CStr = c"cudaRuntimeGetVersion";
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the symbol up.
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, SYMBOL.as_ptr()) };
    if symbol.is_null() {
        return None;
    }
    // SAFETY: the symbol is libcudart's `cudaError_t cudaRuntimeGetVersion(int*)`.
    let get: extern "C" fn(*mut c_int) -> c_int = unsafe { std::mem::transmute(symbol) };
    let mut encoded: c_int = 0;
    (get(&mut encoded) == 0).then_some(encoded)
}

/// Clock ticks per second: the unit of the CPU times in /proc/<pid>/stat.
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system; no memory is involved.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// The page size in bytes: the unit of the resident set in /proc/<pid>/statm.
pub fn page_size() -> u64 {
    // SAFETY: sysconf reads a constant of the system; no memory is involved.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_lives_and_a_finished_child_does_not() {
        assert!(process_exists(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_exists(pid));
        assert!(!terminate(pid));
        assert!(!process_exists(u32::MAX), "no pid of that size");
    }

    #[test]
    fn a_missing_library_says_why() {
        let e = load_global(Path::new("/nonexistent/libnothing.so"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("libnothing.so"), "{e}");
    }
}
