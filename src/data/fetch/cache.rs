//! The cache of fetched sets: where each set's folder is, what its manifest says, and whether
//! the folder is the whole set it claims to be.

use super::{FetchError, MANIFEST, io_error, unpack::hash_file};
use crate::data::catalog::{Check, Set};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
    pub(super) fn create(&self) -> Result<(), FetchError> {
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

    pub(super) fn downloads(&self, set: &Set) -> PathBuf {
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
