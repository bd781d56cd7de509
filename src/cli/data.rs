//! `valleys data`: fill the data cache ahead of a run (on a cluster's login node, say) and
//! show what it holds.

use std::process::ExitCode;
use valleys::config::DatasetName;
use valleys::data::catalog::{self, Set};
use valleys::data::fetch::{self, Cache, MIRROR_ENV, Source};
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

fn fetch_sets(names: &[String]) -> anyhow::Result<ExitCode> {
    let sets = parse_names(names)?;
    let cache = Cache::from_env().bad_input()?;
    let source = Source::from_env().bad_input()?;
    for set in sets {
        if cache.cached(set).is_some() {
            println!(
                "{}: already cached in {}",
                set.dataset.as_str(),
                cache.dir(set).display()
            );
            continue;
        }
        let dir = fetch::ensure(&cache, set, &source, &fetch::report)?;
        println!(
            "{}: cached in {} ({})",
            set.dataset.as_str(),
            dir.display(),
            human_bytes(cache.size(set))
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn list(quick: bool) -> anyhow::Result<ExitCode> {
    let cache = Cache::from_env().bad_input()?;
    println!("data cache: {}", cache.root().display());
    match std::env::var(MIRROR_ENV) {
        Ok(m) if !m.is_empty() => println!("mirror:     {MIRROR_ENV}={m}"),
        _ => println!("mirror:     none ({MIRROR_ENV} unset: fetched from upstream)"),
    }
    let mut failed = false;
    for set in catalog::all() {
        let name = set.dataset.as_str();
        let line = match cache.cached(set) {
            None => {
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
            Some(manifest) => {
                let state = if quick {
                    "not hashed (--quick)".to_owned()
                } else {
                    match cache.verify(set) {
                        Some(problems) if problems.is_empty() => "verifies".to_owned(),
                        Some(problems) => {
                            failed = true;
                            format!("DOES NOT VERIFY: {}", problems.join("; "))
                        }
                        None => "changed while checked".to_owned(),
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
        println!("{name:<14}{line}");
    }
    if failed {
        println!(
            "a set that does not verify is fetched again after removing its folder (rm -r it, then valleys data fetch NAME)"
        );
        return Ok(ExitCode::from(super::EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}
