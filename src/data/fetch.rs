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

mod http;
mod report;
mod unpack;

pub use report::{Sink, finish_line, progress_line, report, set_sink};
pub use unpack::hash_file;

use super::catalog::{Archive, Check, Set};
use serde::{Deserialize, Serialize};
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

/// Where archives come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The URLs pinned in the catalog.
    Upstream,
    /// A URL prefix holding the same files, as `PREFIX/SET/NAME` or `PREFIX/NAME`.
    MirrorUrl(String),
    /// A local directory holding the same files, as `DIR/SET/NAME` or `DIR/NAME`.
    MirrorDir(PathBuf),
}

impl Source {
    /// The mirror [`MIRROR_ENV`] names, else upstream.
    pub fn from_env() -> Result<Self, FetchError> {
        match std::env::var_os(MIRROR_ENV) {
            None => Ok(Self::Upstream),
            Some(v) if v.is_empty() => Ok(Self::Upstream),
            Some(v) => Self::parse(&v.to_string_lossy()),
        }
    }

    /// A mirror as written in [`MIRROR_ENV`]: `http://…`, `https://…`, or a directory.
    pub fn parse(text: &str) -> Result<Self, FetchError> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let (scheme, rest) = text.split_once("://").unwrap_or(("http", text));
            let host = rest.split('/').next().unwrap_or("");
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            if host.is_empty() || host.starts_with(':') {
                return Err(FetchError::Mirror {
                    mirror: redact(text),
                    problem:
                        "no host in the URL; expected http(s)://HOST[:PORT]/PATH or a directory"
                            .into(),
                });
            }
            let mut prefix = format!("{}://{rest}", scheme.to_ascii_lowercase());
            if !prefix.ends_with('/') {
                prefix.push('/');
            }
            return Ok(Self::MirrorUrl(prefix));
        }
        let dir = PathBuf::from(text.strip_prefix("file://").unwrap_or(text));
        if !dir.is_dir() {
            return Err(FetchError::Mirror {
                mirror: text.into(),
                problem: if dir.exists() {
                    "not a directory; expected a directory or an http(s):// URL".into()
                } else {
                    "no such directory; expected a directory or an http(s):// URL".into()
                },
            });
        }
        Ok(Self::MirrorDir(dir))
    }

    fn describe(&self) -> String {
        match self {
            Self::Upstream => "upstream".into(),
            Self::MirrorUrl(u) => format!("the mirror {}", redact(u)),
            Self::MirrorDir(d) => format!("the mirror {}", d.display()),
        }
    }
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

/// One file of a fetched set, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Relative to the set's folder.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What was verified when the set was fetched (the set's `.complete.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub set: String,
    pub files: Vec<FileRecord>,
    /// Each archive's name and where it came from.
    pub archives: Vec<(String, String)>,
    pub fetched: String,
}

/// What the cache holds of one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    Missing,
    Whole(Manifest),
    /// A folder that is not the whole set, and why.
    Damaged(String),
}

/// The cache of fetched sets.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// Which setting chose it, for errors.
    origin: &'static str,
}

impl Cache {
    /// `$XDG_CACHE_HOME/valleys/data`, else `$HOME/.cache/valleys/data`.
    /// A relative XDG_CACHE_HOME is ignored, as the XDG specification says.
    pub fn from_env() -> Result<Self, FetchError> {
        let xdg = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        let (base, origin) = match xdg {
            Some(xdg) => (xdg, "XDG_CACHE_HOME"),
            None => (
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
                    .ok_or(FetchError::NoCache)?,
                "HOME",
            ),
        };
        Ok(Self {
            root: base.join("valleys").join("data"),
            origin,
        })
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            origin: "the caller",
        }
    }

    /// The cache folder, made if it is not there; an unusable one names where it came from.
    fn create(&self) -> Result<(), FetchError> {
        fs::create_dir_all(&self.root).map_err(|source| FetchError::CacheDir {
            root: self.root.clone(),
            origin: self.origin,
            source,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The set's folder (whether or not it is there).
    pub fn dir(&self, set: &Set) -> PathBuf {
        self.root.join(set.dir)
    }

    fn downloads(&self, set: &Set) -> PathBuf {
        self.root.join(".downloads").join(set.dir)
    }

    /// The manifest of a set that is in the cache whole (see [`Cache::inspect`]).
    pub fn cached(&self, set: &Set) -> Option<Manifest> {
        match self.inspect(set) {
            Held::Whole(manifest) => Some(manifest),
            _ => None,
        }
    }

    /// What the cache holds of a set: nothing, the whole set (its manifest reads, names exactly
    /// the set's files, and every one is there with its length; the SHA-256s are checked by
    /// [`Cache::verify`]), or a folder that is not that, and why.
    pub fn inspect(&self, set: &Set) -> Held {
        let dir = self.dir(set);
        if fs::symlink_metadata(&dir).is_err() {
            return Held::Missing;
        }
        let damaged = |why: String| Held::Damaged(why);
        let bytes = match fs::read(dir.join(MANIFEST)) {
            Ok(b) => b,
            Err(_) => {
                return damaged(format!(
                    "no {MANIFEST}: a folder valleys did not fetch whole (fetching replaces it)"
                ));
            }
        };
        let manifest: Manifest = match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => return damaged(format!("its {MANIFEST} does not read ({e})")),
        };
        if manifest.set != set.dir {
            return damaged(format!("its {MANIFEST} is for {}", manifest.set));
        }
        let expected = expected_files(set);
        for (path, pinned) in &expected {
            match manifest.files.iter().find(|f| &f.path == path) {
                None => return damaged(format!("its {MANIFEST} lacks {path}")),
                Some(f) if pinned.is_some_and(|sha| f.sha256 != sha) => {
                    return damaged(format!(
                        "its {MANIFEST} gives {path} another SHA-256 than the pinned one"
                    ));
                }
                Some(_) => {}
            }
        }
        for f in &manifest.files {
            if !expected.iter().any(|(path, _)| path == &f.path) {
                return damaged(format!(
                    "its {MANIFEST} names {}, which the set does not hold",
                    f.path
                ));
            }
            match fs::metadata(dir.join(&f.path)) {
                Err(_) => return damaged(format!("{} is missing", f.path)),
                Ok(m) if !m.is_file() => return damaged(format!("{} is not a file", f.path)),
                Ok(m) if m.len() != f.bytes => {
                    return damaged(format!(
                        "{} is {} bytes, expected {}",
                        f.path,
                        m.len(),
                        f.bytes
                    ));
                }
                Ok(_) => {}
            }
        }
        Held::Whole(manifest)
    }

    /// Takes a set's manifest away, so that the next fetch replaces the folder (which is kept,
    /// and read by nothing, until a verified copy takes its place).
    pub fn invalidate(&self, set: &Set) -> Result<(), FetchError> {
        let path = self.dir(set).join(MANIFEST);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Removes a set's folder (to fetch it again).
    pub fn remove(&self, set: &Set) -> Result<(), FetchError> {
        let dir = self.dir(set);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&dir)(e)),
            _ => Ok(()),
        }
    }

    /// Hashes every file of a cached set against its manifest: the problems found, none when
    /// it verifies; `None` when the set is not in the cache.
    pub fn verify(&self, set: &Set) -> Option<Vec<String>> {
        let manifest = self.cached(set)?;
        let dir = self.dir(set);
        let mut problems = Vec::new();
        for f in &manifest.files {
            let path = dir.join(&f.path);
            match hash_file(&path) {
                Ok((sha, _)) if sha == f.sha256 => {}
                Ok((sha, _)) => problems.push(format!(
                    "{}: SHA-256 {sha}, expected {}",
                    path.display(),
                    f.sha256
                )),
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
        Some(problems)
    }

    /// Bytes the set's folder holds on disk.
    pub fn size(&self, set: &Set) -> u64 {
        fn walk(p: &Path) -> u64 {
            match fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => fs::read_dir(p)
                    .map(|it| it.flatten().map(|e| walk(&e.path())).sum())
                    .unwrap_or(0),
                Ok(m) => m.len(),
                Err(_) => 0,
            }
        }
        walk(&self.dir(set))
    }

    /// Bytes of unfinished downloads kept for resuming.
    pub fn partial_bytes(&self, set: &Set) -> u64 {
        fs::read_dir(self.downloads(set))
            .map(|it| {
                it.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// The paths a whole set holds, with the SHA-256 pinned for each where the catalog pins one.
fn expected_files(set: &Set) -> Vec<(String, Option<&'static str>)> {
    set.archives
        .iter()
        .flat_map(|a| match a.check {
            Check::Gunzipped { sha256, file, .. } => vec![(file.to_owned(), Some(sha256))],
            Check::Archive { .. } => a.members.iter().map(|m| ((*m).to_owned(), None)).collect(),
        })
        .collect()
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
    let lock_path = cache.root.join(format!(".{}.lock", set.dir));
    let lock = File::create(&lock_path).map_err(io_error(&lock_path))?;
    let mut said_waiting = false;
    let mut watched = PartWatch::default();
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
        .root
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
    sync_dir(&cache.root);
    let _ = fs::remove_dir_all(cache.downloads(set));
    progress(Event::Ready { set, dir: &dir });
    Ok(dir)
}

/// What a waiting process shows of another's download: the part file that grows.
#[derive(Default)]
struct PartWatch {
    last: Option<(std::time::Instant, u64)>,
    rate: f64,
}

impl PartWatch {
    fn report(&mut self, cache: &Cache, set: &Set, progress: &dyn Fn(Event)) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|(at, _)| now.duration_since(at) < std::time::Duration::from_millis(500))
        {
            return;
        }
        let downloads = cache.downloads(set);
        let growing = set.archives.iter().find_map(|a| {
            let len = fs::metadata(downloads.join(format!("{}.part", a.name)))
                .ok()?
                .len();
            Some((a, len))
        });
        let Some((archive, done)) = growing else {
            return;
        };
        if let Some((at, before)) = self.last {
            let secs = now.duration_since(at).as_secs_f64().max(1e-3);
            self.rate = done.saturating_sub(before) as f64 / secs;
        }
        self.last = Some((now, done));
        progress(Event::Progress {
            archive,
            done,
            total: Some(archive.bytes),
            rate: self.rate,
        });
    }
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
    if let Ok(entries) = fs::read_dir(&cache.root) {
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

fn put_where(set: &Set) -> String {
    format!("put {} in {}/ there", set_files(set), set.dir)
}

/// "cifar-10-binary.tar.gz (162.2 MiB, from URL)", or for a set of several files "its 4 files
/// A, B, C, D (11.1 MiB, from URL)".
fn set_files(set: &Set) -> String {
    match set.archives {
        [one] => format!(
            "{} ({}, from {}{})",
            one.name,
            crate::format::human_bytes(one.bytes),
            one.urls[0],
            one.name
        ),
        all => format!(
            "its {} files {} ({}, from {})",
            all.len(),
            all.iter().map(|a| a.name).collect::<Vec<_>>().join(", "),
            crate::format::human_bytes(set.download_bytes()),
            all[0].urls[0]
        ),
    }
}

/// `url` as it may be shown: a password in it replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// What to do without internet, in one clause: every file of the set, and where it goes.
pub fn offline_advice(set: &Set) -> String {
    format!(
        "run `valleys data fetch {name}` where there is internet (it fills {cache}), or put {files} in DIR/{dir}/ and set {MIRROR_ENV}=DIR, or set data.dir to an unpacked copy",
        name = set.dataset.as_str(),
        cache = Cache::from_env().map_or_else(
            |_| "~/.cache/valleys/data".into(),
            |c| c.root().display().to_string()
        ),
        files = set_files(set),
        dir = set.dir,
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatasetName;
    use crate::data::catalog;

    #[test]
    fn a_password_in_a_url_is_never_shown() {
        assert_eq!(
            redact("https://ann:s3cret@mirror.example/data/x.gz"),
            "https://ann:***@mirror.example/data/x.gz"
        );
        assert_eq!(redact("http://h:8/a@b"), "http://h:8/a@b");
        assert_eq!(redact("/local/dir"), "/local/dir");
        let err = Source::parse("http://ann:pw@:80/").unwrap_err().to_string();
        assert!(
            err.contains("no host in the URL") && !err.contains("pw"),
            "{err}"
        );
        assert!(Source::parse("HTTP://").is_err());
    }

    #[test]
    fn offline_advice_names_every_file_of_the_set_and_its_folder() {
        let mnist = offline_advice(catalog::set(DatasetName::Mnist).unwrap());
        assert!(
            mnist.contains("or put its 4 files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (11.1 MiB, from https://ossci-datasets.s3.amazonaws.com/mnist/) in DIR/mnist/ and set VALLEYS_DATA_MIRROR=DIR"),
            "{mnist}"
        );
        let cifar = offline_advice(catalog::set(DatasetName::Cifar100).unwrap());
        assert!(
            cifar.contains("or put cifar-100-binary.tar.gz (160.7 MiB, from https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz) in DIR/cifar100/"),
            "{cifar}"
        );
        assert!(cifar.starts_with("run `valleys data fetch cifar100` where there is internet"));
    }

    #[test]
    fn a_mirror_is_a_url_or_an_existing_directory() {
        assert_eq!(
            Source::parse("https://example.org/data").unwrap(),
            Source::MirrorUrl("https://example.org/data/".into())
        );
        let tmp = tempfile::tempdir().unwrap();
        let as_text = tmp.path().display().to_string();
        assert_eq!(
            Source::parse(&as_text).unwrap(),
            Source::MirrorDir(tmp.path().to_owned())
        );
        let err = Source::parse("/nonexistent/mirror")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "VALLEYS_DATA_MIRROR=/nonexistent/mirror: no such directory; expected a directory or an http(s):// URL"
        );
    }
}
