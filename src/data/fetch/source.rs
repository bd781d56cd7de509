//! Where archives come from (upstream, a mirror URL, a mirror directory), and the words that
//! tell a user without internet which files to put where.

use super::{Cache, FetchError, MIRROR_ENV};
use crate::data::catalog::Set;
use std::path::PathBuf;

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
            if host_of(text).is_empty() {
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

    pub(super) fn describe(&self) -> String {
        match self {
            Self::Upstream => "upstream".into(),
            Self::MirrorUrl(u) => format!("the mirror {}", redact(u)),
            Self::MirrorDir(d) => format!("the mirror {}", d.display()),
        }
    }
}

pub(super) fn put_where(set: &Set) -> String {
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

/// The host of a URL, without a user, a password or a port (`[::1]` keeps its brackets).
pub(super) fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return host_port.split_inclusive(']').next().unwrap_or(host_port);
    }
    host_port.split(':').next().unwrap_or("")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatasetName;
    use crate::data::catalog;

    #[test]
    fn a_host_is_read_past_a_user_a_port_and_a_path() {
        assert_eq!(host_of("http://127.0.0.1:8080/a@b"), "127.0.0.1");
        assert_eq!(host_of("https://ann:pw@mirror.example/x"), "mirror.example");
        assert_eq!(host_of("http://[::1]:9/x"), "[::1]");
        assert_eq!(host_of("http://:80/"), "");
    }

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
