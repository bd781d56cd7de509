//! The architecture as lib.rs states it, kept true: what the dashboard and the reports read is
//! plain data, and only the three C++ shims' doors and the platform module hold `unsafe`.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `path` (or `path` itself), without its `#[cfg(test)]` part.
fn sources(path: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for entry in entries {
            out.extend(sources(&entry));
        }
    } else if path.extension().is_some_and(|x| x == "rs")
        && path.file_name().is_some_and(|n| n != "tests.rs")
    {
        let text = std::fs::read_to_string(path).unwrap();
        let code = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .to_owned();
        out.push((path.to_owned(), code));
    }
    out
}

fn src(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(rel)
}

/// Paths that lead to tensors: libtorch itself and the modules that hold tensor work.
const TENSOR_PATHS: [&str; 20] = [
    "tch::",
    "torch_sys",
    "crate::model",
    "crate::train",
    "crate::worker",
    "crate::data::dataset",
    "crate::ablation::run",
    "crate::ablation::twin",
    "probe::runner",
    "probe::direction",
    "probe::scan",
    "probe::offline",
    "super::runner",
    "super::scan",
    "curvature::operator",
    "curvature::lanczos",
    "curvature::measure",
    "super::operator",
    "super::lanczos",
    "super::measure",
];

/// True when `line` names the path `bad` itself, not a longer name ending in it (`fetch::` is
/// not `tch::`).
fn mentions_path(line: &str, bad: &str) -> bool {
    line.match_indices(bad).any(|(at, _)| {
        !line[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn a_path_is_matched_as_a_whole_name() {
    assert!(mentions_path("use tch::Tensor;", "tch::"));
    assert!(mentions_path("x: tch::Tensor, y: fetch::Event", "tch::"));
    assert!(!mentions_path(
        "use crate::data::fetch::{self, Event};",
        "tch::"
    ));
    assert!(!mentions_path("my_tch::x", "tch::"));
}

#[test]
fn the_ui_the_reports_and_the_plain_results_never_reach_tensors() {
    let plain = [
        "ui.rs",
        "ui",
        "export.rs",
        "export",
        "protocol.rs",
        "probe.rs",
        "probe/plane.rs",
        "probe/plane",
        "probe/score.rs",
        "probe/shift.rs",
        "probe/summary.rs",
        "probe/range.rs",
        "probe/ratios.rs",
        "probe/connect.rs",
        "probe/connect",
        "ablation/result.rs",
        "format.rs",
        "plot.rs",
        "plot",
        "stored.rs",
        "stats.rs",
        "curvature.rs",
        "curvature/compare.rs",
        "curvature/density.rs",
        "curvature/store.rs",
        "config/curvature.rs",
        "trajectory.rs",
    ];
    let mut found = Vec::new();
    for rel in plain {
        for (path, code) in sources(&src(rel)) {
            for (n, line) in code.lines().enumerate() {
                let line = line.trim_start();
                // Declaring a child module is not depending on it.
                if line.starts_with("//") || line.starts_with("pub mod ") {
                    continue;
                }
                for bad in TENSOR_PATHS {
                    if mentions_path(line, bad) {
                        found.push(format!("{}:{}: {bad}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "plain modules reaching tensors:\n{}",
        found.join("\n")
    );
}

#[test]
fn unsafe_lives_in_four_modules() {
    let allowed = [
        src("platform.rs"),
        src("model/torchscript/module.rs"),
        src("model/onednn.rs"),
        src("model/second_order.rs"),
    ];
    let mut found = Vec::new();
    for (path, code) in sources(&src("")) {
        if allowed.contains(&path) {
            continue;
        }
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if !line.starts_with("//") && line.contains("unsafe ") {
                found.push(format!("{}:{}", path.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unsafe outside its modules:\n{}",
        found.join("\n")
    );
}

/// The module a source file defines: `src/probe/plane.rs` → `probe::plane`.
fn module_of(path: &Path) -> String {
    let rel = path
        .strip_prefix(src(""))
        .unwrap()
        .with_extension("")
        .to_string_lossy()
        .replace('/', "::");
    let rel = rel.strip_suffix("::mod").unwrap_or(&rel);
    match rel {
        "lib" | "main" => String::new(),
        other => other.to_owned(),
    }
}

/// The paths a line names after `prefix` (`crate::` or `super::`), braces expanded one level:
/// `super::{a, b::c}` gives `a` and `b::c`.
fn named_after(line: &str, prefix: &str) -> Vec<String> {
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect::<String>()
            .trim_end_matches(':')
            .to_owned()
    };
    let mut out = Vec::new();
    for (i, _) in line.match_indices(prefix) {
        let before = line[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &line[i + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            out.extend(
                inner
                    .split(',')
                    .map(|p| word(p.trim()))
                    .filter(|p| !p.is_empty()),
            );
        } else {
            out.push(word(rest));
        }
    }
    out
}

#[test]
fn no_module_imports_in_a_circle_beyond_its_own_children() {
    let files = sources(&src(""));
    let modules: std::collections::BTreeMap<String, String> = files
        .iter()
        .map(|(path, code)| (module_of(path), code.clone()))
        .collect();
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|k| parts[..k].join("::"))
            .find(|m| modules.contains_key(m))
    };
    let related = |a: &str, b: &str| {
        a.is_empty()
            || b.is_empty()
            || a.starts_with(&format!("{b}::"))
            || b.starts_with(&format!("{a}::"))
    };
    let mut edges: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> =
        Default::default();
    for (module, code) in &modules {
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        for line in code.lines().map(str::trim_start) {
            if line.starts_with("//") || line.starts_with("pub mod ") || line.starts_with("mod ") {
                continue;
            }
            let mut targets: Vec<String> = named_after(line, "crate::");
            targets.extend(named_after(line, "super::").into_iter().map(|p| {
                if parent.is_empty() {
                    p
                } else {
                    format!("{parent}::{p}")
                }
            }));
            for target in targets.iter().filter_map(|t| resolve(t)) {
                if target != *module && !related(module, &target) {
                    edges.entry(module.as_str()).or_default().insert(target);
                }
            }
        }
    }
    // A depth-first search for a path back to where it started.
    fn back_to(
        start: &str,
        at: &str,
        edges: &std::collections::BTreeMap<&str, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        seen: &mut std::collections::BTreeSet<String>,
    ) -> bool {
        for next in edges.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if back_to(start, next, edges, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    assert!(
        edges.contains_key("probe::runner"),
        "the scan sees imports: {edges:?}"
    );
    for module in modules.keys() {
        let mut path = vec![module.clone()];
        if back_to(module, module, &edges, &mut path, &mut Default::default()) {
            panic!("an import circle: {}", path.join(" → "));
        }
    }
}
