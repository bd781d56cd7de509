//! `valleys data`: fill the data cache ahead of a run (on a cluster's login node, say) and
//! show what it holds.

use std::process::ExitCode;
use valleys::config::DatasetName;
use valleys::data::catalog::{self, Set};
use valleys::data::fetch::{self, Cache, FetchError, Held, MIRROR_ENV, Source};
use valleys::error::BadInputExt;
use valleys::format::human_bytes;

/// Flags of `valleys data`.
#[derive(clap::Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(clap::Subcommand)]
enum DataCommand {
    /// Download, verify (pinned SHA-256) and unpack data sets into the cache, so that runs on
    /// machines without internet find them (VALLEYS_DATA_MIRROR: a URL or directory with the
    /// same files, used instead of upstream).
    Fetch {
        /// cifar10, cifar100, mnist or fashion-mnist (the whole set); several at once, or all.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// The data sets valleys can fetch: which are cached, where, their size on disk, and
    /// whether every file still matches what was verified when it was fetched.
    List {
        /// Skip hashing the files (only what is there and its size).
        #[arg(long)]
        quick: bool,
    },
}

pub fn run(args: DataArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DataCommand::Fetch { names } => fetch_sets(&names),
        DataCommand::List { quick } => list(quick),
    }
}

fn parse_names(names: &[String]) -> anyhow::Result<Vec<&'static Set>> {
    let known: Vec<&str> = catalog::all().iter().map(|s| s.dataset.as_str()).collect();
    let mut sets: Vec<&'static Set> = Vec::new();
    for name in names {
        let found: Vec<&'static Set> = if name == "all" {
            catalog::all().iter().collect()
        } else {
            let set = DatasetName::from_name(name)
                .and_then(catalog::set)
                .ok_or_else(|| {
                    valleys::error::BadInput::msg(format!(
                        "data fetch: '{name}' is not a data set valleys fetches; expected one of {} or all",
                        known.join(", ")
                    ))
                })?;
            vec![set]
        };
        for set in found {
            if !sets.iter().any(|s| s.dataset == set.dataset) {
                sets.push(set);
            }
        }
    }
    Ok(sets)
}

/// Fetches each set not in the cache whole; a cached set is hashed first and fetched again
/// if it no longer verifies. Every set is tried; the failures are listed at the end.
fn fetch_sets(names: &[String]) -> anyhow::Result<ExitCode> {
    let sets = parse_names(names)?;
    let cache = Cache::from_env().bad_input()?;
    let source = Source::from_env().bad_input()?;
    let stop = super::signal_flag()?;
    fetch::stop_when(stop.clone());
    let mut failed = Vec::new();
    let single = sets.len() == 1;
    for set in sets {
        let name = set.dataset.as_str();
        match cache.inspect(set) {
            Held::Whole(_) => match cache.verify(set) {
                Some(problems) if problems.is_empty() => {
                    say(&format!(
                        "{name}: already cached in {} (verifies)",
                        cache.dir(set).display()
                    ));
                    continue;
                }
                problems => {
                    eprintln!(
                        "valleys: {name}: the cached copy does not verify ({}); fetching it again (it stays until a verified copy replaces it)",
                        problems.map(|p| p.join("; ")).unwrap_or_default()
                    );
                    cache.invalidate(set)?;
                }
            },
            Held::Damaged(why) => {
                eprintln!(
                    "valleys: {name}: the cached folder is not whole ({why}); fetching it again"
                );
            }
            Held::Missing => {}
        }
        match fetch::ensure_stoppable(&cache, set, &source) {
            Ok(dir) => say(&format!(
                "{name}: cached in {} ({})",
                dir.display(),
                human_bytes(cache.size(set))
            )),
            Err(e @ FetchError::Stopped(_)) => {
                eprintln!("valleys: {e}");
                return Ok(ExitCode::from(super::EXIT_STOPPED));
            }
            // One set asked for: its error is the command's one line.
            Err(e) if single => return Err(e.into()),
            Err(e) => {
                eprintln!("valleys: error: {e}");
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::bail!("data fetch: {} not fetched (see above)", failed.join(", "))
}

/// A line on standard output; a reader that went away (`| head`) is not an error.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn list(quick: bool) -> anyhow::Result<ExitCode> {
    let cache = Cache::from_env().bad_input()?;
    say(&format!("data cache: {}", cache.root().display()));
    if cache.root().exists() && !cache.root().is_dir() {
        valleys::bad_input!(
            "the data cache {} is not a directory",
            cache.root().display()
        );
    }
    match std::env::var(MIRROR_ENV) {
        Ok(m) if !m.is_empty() => {
            // The same check a fetch makes, so a mirror that cannot serve is said here too.
            Source::from_env().bad_input()?;
            say(&format!("mirror:     {MIRROR_ENV}={m}"));
        }
        _ => say(&format!(
            "mirror:     none ({MIRROR_ENV} unset: fetched from upstream)"
        )),
    }
    let mut failed = false;
    for set in catalog::all() {
        let name = set.dataset.as_str();
        let line = match cache.inspect(set) {
            Held::Missing => {
                let partial = cache.partial_bytes(set);
                let kept = if partial > 0 {
                    format!("; {} of an interrupted download kept", human_bytes(partial))
                } else {
                    String::new()
                };
                format!(
                    "not cached ({} to download{kept})",
                    human_bytes(set.download_bytes())
                )
            }
            Held::Damaged(why) => {
                failed = true;
                format!(
                    "{}: NOT WHOLE: {why}; `valleys data fetch {name}` fetches it again",
                    cache.dir(set).display()
                )
            }
            Held::Whole(manifest) => {
                let state = if quick {
                    "not hashed (--quick)".to_owned()
                } else {
                    match cache.verify(set) {
                        Some(problems) if problems.is_empty() => "verifies".to_owned(),
                        Some(problems) => {
                            failed = true;
                            format!(
                                "DOES NOT VERIFY: {}; `valleys data fetch {name}` fetches it again",
                                problems.join("; ")
                            )
                        }
                        None => {
                            failed = true;
                            "changed while it was checked".to_owned()
                        }
                    }
                };
                format!(
                    "{}, {} files, {}, fetched {}: {state}",
                    cache.dir(set).display(),
                    manifest.files.len(),
                    human_bytes(cache.size(set)),
                    manifest.fetched.get(..10).unwrap_or(&manifest.fetched)
                )
            }
        };
        say(&format!("{name:<14}{line}"));
    }
    Ok(if failed {
        ExitCode::from(super::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}
