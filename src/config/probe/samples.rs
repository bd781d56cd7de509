//! Sample counts that may also be `all` (every sample; stored as `usize::MAX`, which every
//! subset of a smaller set is): serde and flag parsing, and how they are said.

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(v: &Option<usize>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(usize::MAX) => s.serialize_str("all"),
        Some(n) => s.serialize_u64(*n as u64),
        None => s.serialize_none(),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Count(usize),
        Word(String),
    }
    match Option::<Repr>::deserialize(d)? {
        None => Ok(None),
        Some(Repr::Count(n)) => Ok(Some(n)),
        Some(Repr::Word(w)) => parse(&w).map(Some).map_err(serde::de::Error::custom),
    }
}

/// A count or `all`, as flags take it.
pub fn parse(text: &str) -> Result<usize, crate::error::Invalid> {
    match text.trim() {
        "all" => Ok(usize::MAX),
        t => t
            .parse()
            .map_err(|_| format!("'{text}': expected a number of samples or 'all'").into()),
    }
}

/// "all" or the count.
pub fn describe(n: usize) -> String {
    if n == usize::MAX {
        "all".into()
    } else {
        n.to_string()
    }
}
