//! Stored results (probes, batches, ablations): numbered ids, atomic writes of a CSV and its
//! JSON, and reading them back with the files that could not be read.

use super::{RunDirError, io_err, write_atomic};
use crate::stored::Stored;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// A fresh sequence number for a result in `dir`: one more than the highest `NNN-…` entry
/// (1 when it has none or does not exist), so that ids sort in creation order. The number is
/// reserved with a marker file `.NNN.taken` created exclusively, so two processes storing
/// results in one run at the same moment (the dashboard and `valleys probe`) never share one.
pub fn next_sequence_number(dir: &Path) -> u32 {
    let number = |name: &str| {
        let name = name.strip_prefix('.').unwrap_or(name);
        name.get(..3)?.parse::<u32>().ok()
    };
    let highest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(number))
        .max();
    let mut n = highest.unwrap_or(0) + 1;
    if std::fs::create_dir_all(dir).is_err() {
        return n;
    }
    loop {
        let marker = dir.join(format!(".{n:03}.taken"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
        {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            // Taken now, or the directory cannot hold a marker (then writing fails later
            // with a message of its own).
            _ => return n,
        }
    }
}

/// Checks that results can be stored in `dir` (created if missing) before any work that
/// produces them starts: a path that is a file, or a directory that cannot be written, is
/// found now, not after every point was measured.
pub fn check_writable(dir: &Path) -> Result<(), RunDirError> {
    std::fs::create_dir_all(dir)
        .and_then(|()| tempfile::tempfile_in(dir).map(drop))
        .map_err(io_err(dir, "cannot store results there"))
}

/// Writes `dir/<id>.csv` (when there is a table) and then `dir/<id>.json`, each atomically,
/// creating `dir` first; the JSON comes last, so a reader that finds it finds the CSV too.
pub fn write_result(
    dir: &Path,
    id: &str,
    value: &impl serde::Serialize,
    csv: Option<&str>,
) -> Result<PathBuf, RunDirError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir, "cannot create the directory"))?;
    if let Some(csv) = csv {
        write_atomic(&dir.join(format!("{id}.csv")), csv.as_bytes())?;
    }
    let json = dir.join(format!("{id}.json"));
    let text = serde_json::to_string_pretty(value).expect("results serialise to JSON");
    write_atomic(&json, format!("{text}\n").as_bytes())?;
    Ok(json)
}

/// Every `*.json` file in `dir` that parses as a `T` and passes its [`Stored::check`], in
/// file-name order, with the files that did not and why. `belongs` tells files of this kind from other results stored beside them
/// (those are passed over without a word); a missing `dir` holds none.
pub fn read_json_files<T: serde::de::DeserializeOwned + Stored>(
    dir: &Path,
    belongs: impl Fn(&serde_json::Value) -> bool,
) -> (Vec<T>, Vec<String>) {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut read = Vec::new();
    let mut skipped = Vec::new();
    for path in &paths {
        let value = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())
            });
        let value = match value {
            Ok(v) if !belongs(&v) => continue,
            Ok(v) => v,
            Err(e) => {
                skipped.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        match serde_json::from_value::<T>(value) {
            Ok(t) => match t.check() {
                Ok(()) => read.push(t),
                Err(e) => skipped.push(format!("{}: {e}", path.display())),
            },
            Err(e) => skipped.push(format!("{}: {e}", path.display())),
        }
    }
    (read, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_results_path_that_is_a_file_is_refused_before_any_work() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("planes");
        std::fs::write(&file, "not a directory").unwrap();
        let e = check_writable(&file).unwrap_err().to_string();
        assert!(e.contains("planes: cannot store results there"), "{e}");
        check_writable(&tmp.path().join("probes")).unwrap();
        assert!(tmp.path().join("probes").is_dir());
    }

    #[test]
    fn stored_results_are_numbered_in_sequence_and_read_back_in_id_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("probes");
        assert_eq!(next_sequence_number(&dir), 1, "a missing directory");
        assert!(dir.join(".001.taken").is_file(), "1 is reserved");
        for (name, text) in [
            ("010-b.json", "{\"v\": 10}"),
            ("002-a.json", "{\"v\": 2}"),
            ("003-torn.json", "{\"v\": "),
            ("004-other.json", "{\"w\": 4}"),
            ("005-c.csv", "v\n5\n"),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        assert_eq!(next_sequence_number(&dir), 11);
        assert_eq!(next_sequence_number(&dir), 12, "11 is taken now");
        std::fs::write(dir.join("006-odd.json"), "{\"v\": 7}").unwrap();
        #[derive(serde::Deserialize)]
        struct V {
            v: u32,
        }
        impl Stored for V {
            fn check(&self) -> Result<(), crate::stored::StoredError> {
                match self.v % 2 {
                    0 => Ok(()),
                    _ => Err(crate::stored::StoredError(format!(
                        "v is {}; expected an even number",
                        self.v
                    ))),
                }
            }
        }
        let (read, skipped) = read_json_files::<V>(&dir, |v| v.get("w").is_none());
        let read: Vec<u32> = read.iter().map(|x| x.v).collect();
        assert_eq!(read, [2, 10]);
        assert_eq!(skipped.len(), 2, "the torn and the odd file: {skipped:?}");
        assert!(skipped[0].contains("003-torn.json"), "{skipped:?}");
        assert!(
            skipped[1].contains("006-odd.json: v is 7; expected an even number"),
            "{skipped:?}"
        );
    }
}
