//! A downloaded file checked against its pin, and what it holds written into the staging
//! folder: a gzipped IDX file gunzipped, a tarball's listed members and nothing else.

use super::{FetchError, FileRecord, io_error};
use crate::data::catalog::{Archive, Check};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

/// Checks `path` against the archive's pin and writes what it holds into `staging`: the
/// records of the files written.
pub(super) fn verify_and_unpack(
    archive: &Archive,
    path: &Path,
    staging: &Path,
    shown: &str,
    fate: &'static str,
) -> Result<Vec<FileRecord>, FetchError> {
    match archive.check {
        Check::Archive { sha256, bytes } => {
            let (found, len) = hash_file(path).map_err(io_error(path))?;
            if len != bytes {
                return Err(FetchError::Length {
                    file: shown.into(),
                    what: "the file",
                    expected: bytes,
                    found: len,
                    fate,
                });
            }
            if found != sha256 {
                return Err(FetchError::Hash {
                    file: shown.into(),
                    what: "the file",
                    expected: sha256.into(),
                    found,
                    fate,
                });
            }
            untar(archive, path, staging, shown, fate)
        }
        Check::Gunzipped {
            sha256,
            bytes,
            file,
        } => {
            let out = staging.join(file);
            let input = File::open(path).map_err(io_error(path))?;
            let corrupt = |e: io::Error| FetchError::Corrupt {
                file: shown.into(),
                problem: format!("not a whole gzip file ({e})"),
                fate,
            };
            // Never more than one byte past the pinned length: a small file that gunzips to
            // gigabytes is refused, not written out.
            let mut contents = flate2::read::GzDecoder::new(input).take(bytes + 1);
            let (found, len) = copy_hashed(&mut contents, &out).map_err(|e| match e {
                Copied::Read(e) => corrupt(e),
                Copied::Write(e) => io_error(&out)(e),
            })?;
            let mismatch = if len != bytes {
                Some(FetchError::Length {
                    file: shown.into(),
                    what: "its gunzipped contents",
                    expected: bytes,
                    found: len,
                    fate,
                })
            } else if found != sha256 {
                Some(FetchError::Hash {
                    file: shown.into(),
                    what: "its gunzipped contents",
                    expected: sha256.into(),
                    found: found.clone(),
                    fate,
                })
            } else {
                None
            };
            if let Some(e) = mismatch {
                let _ = fs::remove_file(&out);
                return Err(e);
            }
            Ok(vec![FileRecord {
                path: file.into(),
                bytes: len,
                sha256: found,
            }])
        }
    }
}

/// Writes the archive's listed members (and nothing else) under `staging`.
fn untar(
    archive: &Archive,
    path: &Path,
    staging: &Path,
    shown: &str,
    fate: &'static str,
) -> Result<Vec<FileRecord>, FetchError> {
    let corrupt = |problem: String| FetchError::Corrupt {
        file: shown.into(),
        problem,
        fate,
    };
    let input = File::open(path).map_err(io_error(path))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(input));
    let mut records = Vec::new();
    let entries = tar
        .entries()
        .map_err(|e| corrupt(format!("not a tar.gz file ({e})")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(format!("unreadable ({e})")))?;
        let name = entry
            .path()
            .map_err(|e| corrupt(format!("a member's name is unreadable ({e})")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        let Some(member) = archive.members.iter().find(|m| **m == name) else {
            continue;
        };
        if !entry.header().entry_type().is_file() {
            return Err(corrupt(format!("{member} is not a regular file")));
        }
        let out = staging.join(member);
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        let (sha, len) = copy_hashed(&mut entry, &out).map_err(|e| match e {
            Copied::Read(e) => corrupt(format!("{member} is cut short ({e})")),
            Copied::Write(e) => io_error(&out)(e),
        })?;
        records.push(FileRecord {
            path: (*member).into(),
            bytes: len,
            sha256: sha,
        });
    }
    let missing: Vec<&str> = archive
        .members
        .iter()
        .filter(|m| !records.iter().any(|r| r.path == **m))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(corrupt(format!("it lacks {}", missing.join(", "))));
    }
    Ok(records)
}

enum Copied {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `input` into a new file at `out` (synced), returning its SHA-256 and length.
fn copy_hashed(input: &mut dyn Read, out: &Path) -> Result<(String, u64), Copied> {
    let mut file = File::create(out).map_err(Copied::Write)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 18];
    let mut len = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copied::Read(e)),
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(Copied::Write)?;
        len += n as u64;
    }
    file.sync_all().map_err(Copied::Write)?;
    Ok((hex(&hasher.finalize()), len))
}

/// The SHA-256 (lowercase hex) and length of a file.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let len = io::copy(&mut file, &mut hasher)?;
    Ok((hex(&hasher.finalize()), len))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
