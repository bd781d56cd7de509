//! Named data sets fetched once into the user's cache, the way valleys treats libtorch:
//! SHA-256 pinned in [`super::catalog`], downloads that resume, nothing half-made, one cache for
//! every clone and every run.
//!
//! Layout under the cache root (`$XDG_CACHE_HOME/valleys/data`, else `~/.cache/valleys/data`):
//!
//! ```text
//! cifar10/                   the set, exactly as its archive unpacks, and
//! cifar10/.complete.json     what was verified: written last, inside the folder renamed into place
//! .downloads/cifar10/*.part  what a download has so far (resumed with an HTTP range)
//! .cifar10.lock              held while one process fetches, so two runs download once
//! ```
//!
//! A folder without its manifest is never read: a set appears whole (one rename) or not at all.

mod cache;
mod http;
mod report;
mod source;
mod unpack;

pub use cache::{Cache, FileRecord, Held, Manifest};
pub use report::{Sink, finish_line, progress_line, report, set_sink};
pub use source::{Source, offline_advice, redact};
pub use unpack::hash_file;

use super::catalog::{Archive, Set};
use source::put_where;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Names the environment setting for a mirror (a URL or a local directory).
pub const MIRROR_ENV: &str = "VALLEYS_DATA_MIRROR";

const MANIFEST: &str = ".complete.json";
/// Whole-file retries of one URL after the connection breaks, each resuming where it broke.
const RETRIES: u32 = 4;

/// Why a data set could not be fetched; every message is one line that names the file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the data cache: neither XDG_CACHE_HOME nor HOME is set; set one of them, or data.dir")]
    NoCache,
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{file}: {what} has SHA-256 {found}, expected {expected}; {fate}")]
    Hash {
        file: String,
        what: &'static str,
        expected: String,
        found: String,
        fate: &'static str,
    },
    #[error("{file}: {what} is {found} bytes, expected {expected}; {fate}")]
    Length {
        file: String,
        what: &'static str,
        expected: u64,
        found: u64,
        fate: &'static str,
    },
    #[error("{file}: {problem}; {fate}")]
    Corrupt {
        file: String,
        problem: String,
        fate: &'static str,
    },
    #[error("the data cache {root} (from {origin}): {source}")]
    CacheDir {
        root: PathBuf,
        origin: &'static str,
        source: io::Error,
    },
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Stopped(String),
    #[error("{0}")]
    Local(String),
    #[error("{MIRROR_ENV}={mirror}: {problem}")]
    Mirror { mirror: String, problem: String },
}

pub(super) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_owned(),
        source,
    }
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static STOP_FLAGS: std::sync::Mutex<Vec<std::sync::Arc<std::sync::atomic::AtomicBool>>> =
    std::sync::Mutex::new(Vec::new());

/// Asks a fetch in progress (on any thread) to stop soon: what arrived is kept, so the next
/// fetch resumes it. [`ensure`] then fails with "stopped".
pub fn request_stop() {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Makes `flag` (raised by a signal handler, say) stop any fetch once it is raised.
pub fn stop_when(flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    STOP_FLAGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(flag);
}

fn stop_requested() -> bool {
    use std::sync::atomic::Ordering;
    STOP.load(Ordering::SeqCst)
        || STOP_FLAGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|f| f.load(Ordering::SeqCst))
}

/// What a fetch is doing, for a progress line.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Another process holds the set's lock (it is fetching the same set).
    Waiting { set: &'a Set },
    /// A request goes out for `url`, to resume at `offset` if that is not 0.
    Connecting {
        archive: &'a Archive,
        url: &'a str,
        offset: u64,
    },
    /// The server answered: the body starts at `offset`.
    Download {
        archive: &'a Archive,
        from: &'a str,
        offset: u64,
        total: Option<u64>,
    },
    /// Bytes so far of the file, and the rate of this attempt in bytes per second.
    Progress {
        archive: &'a Archive,
        done: u64,
        total: Option<u64>,
        rate: f64,
    },
    /// The connection broke; the download resumes from `done`.
    Retry {
        archive: &'a Archive,
        done: u64,
        reason: &'a str,
    },
    /// The file is checked against its pinned SHA-256 (and unpacked).
    Verify { archive: &'a Archive },
    /// The set is in the cache.
    Ready { set: &'a Set, dir: &'a Path },
}

/// The set's folder in the cache, fetched from `source` first if it is not there whole. Two
/// processes asking at once download it once: the second waits for the first's lock.
pub fn ensure(
    cache: &Cache,
    set: &Set,
    source: &Source,
    progress: &dyn Fn(Event),
) -> Result<PathBuf, FetchError> {
    let dir = cache.dir(set);
    if cache.cached(set).is_some() {
        return Ok(dir);
    }
    cache.create()?;
    let lock_path = cache.root().join(format!(".{}.lock", set.dir));
    let lock = File::create(&lock_path).map_err(io_error(&lock_path))?;
    let mut said_waiting = false;
    let mut watched = report::PartWatch::default();
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) => {
                if !said_waiting {
                    progress(Event::Waiting { set });
                    said_waiting = true;
                }
                // The other process's download, as its part file grows.
                watched.report(cache, set, progress);
                if stop_requested() {
                    return Err(FetchError::Stopped(format!(
                        "stopped while another valleys fetched {}",
                        set.dataset.as_str()
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_error(&lock_path)(e)),
        }
    }
    // Whoever held the lock may have fetched it meanwhile.
    if cache.cached(set).is_some() {
        return Ok(dir);
    }
    let staging = cache
        .root()
        .join(format!(".staging-{}-{}", set.dir, std::process::id()));
    remove_stale_staging(cache, set);
    let result = fetch_into(cache, set, source, &staging, progress);
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
        return result.map(|_| dir);
    }
    // A folder without a manifest (an earlier layout, a hand-made copy) gives way to the whole set.
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
    }
    fs::rename(&staging, &dir).map_err(io_error(&dir))?;
    sync_dir(cache.root());
    let _ = fs::remove_dir_all(cache.downloads(set));
    progress(Event::Ready { set, dir: &dir });
    Ok(dir)
}

/// [`ensure`] on a thread of its own, reported with [`report`], that gives up within a second
/// once a stop is asked for ([`request_stop`], or a flag given to [`stop_when`] raised by a
/// signal): a transfer stuck in a read does not hold the user for its time-out. What arrived is
/// kept for the next fetch.
pub fn ensure_stoppable(
    cache: &Cache,
    set: &'static Set,
    source: &Source,
) -> Result<PathBuf, FetchError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (c, s) = (cache.clone(), source.clone());
    std::thread::spawn(move || {
        let _ = tx.send(ensure(&c, set, &s, &report));
    });
    let mut asked: Option<std::time::Instant> = None;
    let result = loop {
        match rx.recv_timeout(std::time::Duration::from_millis(50)) {
            Ok(result) => break result,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break Err(FetchError::Stopped(format!(
                    "the fetch of {} ended without a word",
                    set.dataset.as_str()
                )));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if stop_requested() {
            let since = *asked.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= std::time::Duration::from_secs(1) {
                break Err(FetchError::Stopped(stopped_words(cache, set)));
            }
        }
    };
    finish_line();
    result
}

/// "stopped while fetching cifar10: 70.1 MiB kept in …; the next fetch resumes it".
pub fn stopped_words(cache: &Cache, set: &Set) -> String {
    let kept = cache.partial_bytes(set);
    if kept == 0 {
        return format!("stopped while fetching {}", set.dataset.as_str());
    }
    format!(
        "stopped while fetching {}: {} kept in {}; the next fetch resumes it",
        set.dataset.as_str(),
        crate::format::human_bytes(kept),
        cache.downloads(set).display()
    )
}

/// Staging folders left by processes that died mid-unpack (the lock is ours, so none is live).
fn remove_stale_staging(cache: &Cache, set: &Set) {
    let prefix = format!(".staging-{}-", set.dir);
    if let Ok(entries) = fs::read_dir(cache.root()) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

fn fetch_into(
    cache: &Cache,
    set: &Set,
    source: &Source,
    staging: &Path,
    progress: &dyn Fn(Event),
) -> Result<(), FetchError> {
    fs::create_dir_all(staging).map_err(io_error(staging))?;
    let mut files = Vec::new();
    let mut archives = Vec::new();
    for archive in set.archives {
        let (path, from, downloaded) = obtain(cache, set, archive, source, progress)?;
        progress(Event::Verify { archive });
        // A mirror directory's copy is named by its path and left alone when it is wrong.
        let (shown, fate) = if downloaded {
            (archive.name.to_owned(), "the download was discarded")
        } else {
            (from.clone(), "the mirror's copy was left as it is")
        };
        let unpacked = unpack::verify_and_unpack(archive, &path, staging, &shown, fate);
        if unpacked.is_err() && downloaded {
            // A file that does not verify is never kept (nor resumed from).
            let _ = fs::remove_file(&path);
        }
        files.extend(unpacked?);
        archives.push((archive.name.to_owned(), from));
    }
    let manifest = Manifest {
        set: set.dir.to_owned(),
        files,
        archives,
        fetched: jiff::Timestamp::now().to_string(),
    };
    let path = staging.join(MANIFEST);
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| FetchError::Io {
        path: path.clone(),
        source: io::Error::other(e),
    })?;
    write_synced(&path, &text)?;
    sync_dir(staging);
    Ok(())
}

/// The archive as a local file: the mirror directory's copy, or a finished download. Returns
/// its path, where it came from, and whether it was downloaded (so may be discarded).
fn obtain(
    cache: &Cache,
    set: &Set,
    archive: &Archive,
    source: &Source,
    progress: &dyn Fn(Event),
) -> Result<(PathBuf, String, bool), FetchError> {
    let urls: Vec<String> = match source {
        Source::MirrorDir(dir) => {
            let candidates = [dir.join(set.dir).join(archive.name), dir.join(archive.name)];
            for candidate in &candidates {
                if candidate.is_file() {
                    let from = candidate.display().to_string();
                    return Ok((candidate.clone(), from, false));
                }
            }
            let odd = candidates
                .iter()
                .find(|c| c.exists())
                .map(|c| format!(" ({} is there, but not as a file)", c.display()))
                .unwrap_or_default();
            return Err(FetchError::Mirror {
                mirror: dir.display().to_string(),
                problem: format!(
                    "neither {}/{} nor {} is there{odd}; {}",
                    set.dir,
                    archive.name,
                    archive.name,
                    put_where(set)
                ),
            });
        }
        Source::MirrorUrl(prefix) => vec![
            format!("{prefix}{}/{}", set.dir, archive.name),
            format!("{prefix}{}", archive.name),
        ],
        Source::Upstream => archive
            .urls
            .iter()
            .map(|u| format!("{u}{}", archive.name))
            .collect(),
    };
    let downloads = cache.downloads(set);
    fs::create_dir_all(&downloads).map_err(io_error(&downloads))?;
    let part = downloads.join(format!("{}.part", archive.name));
    let mut failures = Vec::new();
    let kept = || fs::metadata(&part).map_or(0, |m| m.len());
    for url in &urls {
        let shown = redact(url);
        match http::download(url, &shown, &part, archive, progress) {
            Ok(()) => return Ok((part, shown, true)),
            Err(http::Failed::Remote(why)) => failures.push(format!("{shown}: {why}")),
            // No other URL helps a disk that is full.
            Err(http::Failed::Local(why)) => {
                return Err(FetchError::Local(format!(
                    "{why}, while downloading {}; {} kept, and the next fetch resumes it",
                    archive.name,
                    crate::format::human_bytes(kept())
                )));
            }
        }
        if stop_requested() {
            break;
        }
    }
    let kept = kept();
    if stop_requested() {
        return Err(FetchError::Stopped(format!(
            "stopped while downloading {}: {} kept in {}; the next fetch resumes it",
            archive.name,
            crate::format::human_bytes(kept),
            part.display()
        )));
    }
    let resume = if kept > 0 {
        format!(
            " ({} kept in {}; the next fetch resumes it)",
            crate::format::human_bytes(kept),
            part.display()
        )
    } else {
        String::new()
    };
    Err(FetchError::Unreachable(format!(
        "{}: cannot download {} ({}) from {}: {}{resume}; without internet, {}",
        set.dataset.as_str(),
        archive.name,
        crate::format::human_bytes(archive.bytes),
        source.describe(),
        failures.join("; "),
        offline_advice(set)
    )))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), FetchError> {
    let mut f = File::create(path).map_err(io_error(path))?;
    f.write_all(bytes).map_err(io_error(path))?;
    f.sync_all().map_err(io_error(path))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
