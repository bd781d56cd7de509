//! Experiment files: parsing, `--set` overrides, defaults and validation.
//!
//! Every error names the file, the field path and the offending value, and says what was
//! expected, so that one line on stderr is enough to fix the file.

pub mod ablation;
pub mod curvature;
pub mod probe;
mod schema;
mod validate;

pub use schema::*;
pub use validate::MAX_DIRECTIONS;

use serde_yaml::Value;
use std::path::{Path, PathBuf};

/// Why an experiment could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the experiment file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: the file is empty; expected an experiment with name, data, model and train sections"
    )]
    Empty { path: PathBuf },
    #[error("{origin}: YAML syntax error: {message}")]
    Syntax { origin: String, message: String },
    #[error("{origin}: {field}: {message}")]
    Field {
        origin: String,
        field: String,
        message: String,
    },
    #[error("{origin}: {field} = {value}: expected {expected}")]
    Invalid {
        origin: String,
        field: String,
        value: String,
        expected: String,
    },
    #[error("--set {}: {}", arg.escape_debug(), message.replace('\n', " "))]
    Override { arg: String, message: String },
}

impl Experiment {
    /// Reads, overrides, resolves and validates an experiment file.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut experiment = Self::from_yaml(&text, &path.display().to_string(), overrides)?;
        experiment.anchor_paths(path.parent().unwrap_or(Path::new("")));
        Ok(experiment)
    }

    /// Makes the files the experiment names (its model's and data's `path`, the ablation's
    /// `twin_model`) relative to `base`, the experiment file's directory, as a user reading
    /// the file expects; absolute paths stay as they are.
    pub fn anchor_paths(&mut self, base: &Path) {
        // Absolute, so that the experiment means the same files wherever it is written.
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_owned());
        let anchor = |p: &mut Option<PathBuf>| {
            if let Some(path) = p
                && path.is_relative()
            {
                *path = tidy_path(&base.join(&*path));
            }
        };
        anchor(&mut self.model.path);
        anchor(&mut self.data.path);
        if let Some(ablation) = &mut self.ablation {
            anchor(&mut ablation.twin_model);
        }
    }

    /// Parses an experiment from YAML text; `origin` names the source in messages.
    pub fn from_yaml(text: &str, origin: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        Self::parse(text, origin, overrides).map_err(|e| blame_override(e, overrides))
    }

    fn parse(text: &str, origin: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        check_size(text, origin)?;
        let mut value: Value = serde_yaml::from_str(text).map_err(|e| syntax_error(origin, &e))?;
        if value.is_null() {
            return Err(ConfigError::Empty {
                path: PathBuf::from(origin),
            });
        }
        for arg in overrides {
            apply_override(&mut value, arg)?;
        }
        let parsed: Experiment = if overrides.is_empty() {
            // Straight from the text, so that type errors keep their line and column.
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| field_error(origin, e))?
        } else {
            serde_path_to_error::deserialize(value).map_err(|e| field_error(origin, e))?
        };
        let resolved = parsed.resolve();
        resolved.validate(origin)?;
        Ok(resolved)
    }

    /// The experiment as stored in a run directory's config.yaml.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("an Experiment always serialises")
    }
}

/// `path` without `.` and `name/..` steps (`experiments/sweeps/../quick.yaml` is
/// `experiments/quick.yaml`), for messages and files people read; unchanged where that would
/// name another file (a step through a symbolic link).
pub fn tidy_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    let tidy: PathBuf = out.iter().collect();
    let tidy = if tidy.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        tidy
    };
    match (tidy.canonicalize(), path.canonicalize()) {
        (Ok(a), Ok(b)) if a != b => path.to_owned(),
        _ => tidy,
    }
}

fn syntax_error(origin: &str, e: &serde_yaml::Error) -> ConfigError {
    let origin = match e.location() {
        Some(loc) => format!("{origin}:{}:{}", loc.line(), loc.column()),
        None => origin.to_owned(),
    };
    ConfigError::Syntax {
        origin,
        message: strip_location(&e.to_string()),
    }
}

fn field_error(origin: &str, e: serde_path_to_error::Error<serde_yaml::Error>) -> ConfigError {
    let field = e.path().to_string();
    let inner = e.inner();
    let origin = match inner.location() {
        Some(loc) => format!("{origin}:{}:{}", loc.line(), loc.column()),
        None => origin.to_owned(),
    };
    let mut message = strip_location(&inner.to_string());
    // serde_path_to_error already gives the path; drop serde_yaml's own (partial) copy of it.
    if let Some((prefix, rest)) = message.split_once(": ")
        && field.starts_with(prefix)
    {
        message = rest.to_owned();
    }
    if let Some(hint) = closest_field_hint(&message) {
        message = format!("{message} ({hint})");
    }
    ConfigError::Field {
        origin,
        field: if field == "." {
            "(top level)".into()
        } else {
            field
        },
        message,
    }
}

/// The largest experiment file read, and the deepest nesting of `[` and `{`: far beyond any
/// real experiment, and small enough that a hostile file fails at once (the YAML parser
/// spends quadratic time on deep flow collections before it gives up).
const MAX_FILE_BYTES: usize = 1 << 20;
const MAX_FLOW_DEPTH: usize = 64;

fn check_size(text: &str, origin: &str) -> Result<(), ConfigError> {
    let syntax = |message: String| ConfigError::Syntax {
        origin: origin.to_owned(),
        message,
    };
    if text.len() > MAX_FILE_BYTES {
        return Err(syntax(format!(
            "the text is {} bytes; expected an experiment of at most {MAX_FILE_BYTES} bytes",
            text.len()
        )));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut comment = false;
    for c in text.chars() {
        match (quote, c) {
            (_, '\n') => comment = false,
            _ if comment => {}
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => comment = true,
            (None, '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_FLOW_DEPTH {
        return Err(syntax(format!(
            "lists or maps nested {deepest} deep; expected at most {MAX_FLOW_DEPTH} levels"
        )));
    }
    Ok(())
}

/// An error in a field that a `--set` override wrote is the override's, not the file's.
fn blame_override(e: ConfigError, overrides: &[String]) -> ConfigError {
    let field = match &e {
        ConfigError::Field { field, .. } | ConfigError::Invalid { field, .. } => field.clone(),
        _ => return e,
    };
    let culprit = overrides.iter().rev().find(|arg| {
        let key = arg.split_once('=').map_or(arg.as_str(), |(k, _)| k).trim();
        field == key || field.starts_with(&format!("{key}."))
    });
    let Some(arg) = culprit else {
        return e;
    };
    let message = match e {
        ConfigError::Field { field, message, .. } => format!("{field}: {message}"),
        ConfigError::Invalid {
            field,
            value,
            expected,
            ..
        } => format!("{field} = {value}: expected {expected}"),
        other => return other,
    };
    ConfigError::Override {
        arg: arg.clone(),
        message,
    }
}

/// serde_yaml appends " at line L column C"; the location is already in the prefix.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// For "unknown field `x`, expected one of `a`, `b`": suggests the closest valid name.
fn closest_field_hint(message: &str) -> Option<String> {
    let (kind, rest) = if let Some(rest) = message.strip_prefix("unknown field `") {
        ("field", rest)
    } else if let Some(rest) = message.strip_prefix("unknown variant `") {
        ("value", rest)
    } else {
        return None;
    };
    let (unknown, candidates) = rest.split_once('`')?;
    candidates
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|c| (strsim::jaro_winkler(unknown, c), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, best)| format!("did you mean {kind} `{best}`?"))
}

/// Applies one `--set a.b.c=value` override; the value is read as YAML (so `0.1`, `true`
/// and `[1, 2]` get their natural types).
fn apply_override(root: &mut Value, arg: &str) -> Result<(), ConfigError> {
    let bad = |message: &str| ConfigError::Override {
        arg: arg.to_owned(),
        message: message.to_owned(),
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected KEY=VALUE, e.g. --set train.epochs=3"))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad("the key has an empty part; expected e.g. train.lr"));
    }
    check_size(raw, "--set").map_err(|e| bad(&e.to_string()))?;
    let value: Value =
        serde_yaml::from_str(raw).map_err(|e| bad(&format!("the value is not valid YAML: {e}")))?;
    let mut node = root;
    for (i, part) in parts.iter().enumerate() {
        let map = match node {
            Value::Mapping(map) => map,
            Value::Null => {
                *node = Value::Mapping(Default::default());
                match node {
                    Value::Mapping(map) => map,
                    _ => unreachable!("just set to a mapping"),
                }
            }
            _ => {
                return Err(bad(&format!(
                    "{} is not a section, so it has no field {part}",
                    parts[..i].join(".")
                )));
            }
        };
        let key = Value::String((*part).to_owned());
        if i + 1 == parts.len() {
            map.insert(key, value);
            return Ok(());
        }
        node = map.entry(key).or_insert(Value::Null);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
