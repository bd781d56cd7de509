//! The sweep's `connect:` section carried out: once every variant has trained, each pair of
//! runs it asks for is connected as `valleys connect` would (stored in the first run's
//! connections/); pairs measured before are skipped, so a stopped sweep continues where it
//! was.

use super::*;
use valleys::probe::connect::Endpoint;
use valleys::sweep::pairs;

/// Measures the pairs still missing; a stop leaves the rest for the next `valleys sweep DIR`.
/// The exit status: 0, EXIT_STOPPED, or EXIT_FAILURE when a pair failed.
pub(super) fn connect_pairs(
    dir: &SweepDir,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<u8> {
    let Some(settings) = dir.connect() else {
        return Ok(0);
    };
    let variants = dir.variants().bad_input()?;
    let (measured, missing) = pairs::read(dir, &settings);
    if missing.is_empty() {
        return Ok(0);
    }
    println!(
        "connecting {} of {} pairs of runs ({} pairs, {} iterates)",
        missing.len(),
        measured.len() + missing.len(),
        settings.pairs.as_str(),
        settings.iterate
    );
    let mut failed = 0;
    for (i, j) in missing {
        if stop.load(Ordering::Relaxed) {
            println!(
                "stopped; continue with: valleys sweep {}",
                dir.root.display()
            );
            return Ok(EXIT_STOPPED);
        }
        let (a, b) = (&variants[i], &variants[j]);
        let (a_path, b_path) = (dir.run_path(a), dir.run_path(b));
        // A diverged run has no weights to connect; an unfinished one has none yet.
        if let Some(v) = [a, b]
            .into_iter()
            .find(|v| dir.state(v) != VariantState::Done)
        {
            println!(
                "skipping {} → {}: {} is {}",
                a.id,
                b.id,
                v.id,
                dir.state(v).as_str()
            );
            continue;
        }
        let device = Experiment::load(&RunDir::open(&a_path).bad_input()?.config_path(), &[])
            .map_or_else(|_| "auto".to_owned(), |e| e.device);
        let end = |path: &std::path::Path| Endpoint {
            run: path.to_owned(),
            iterate: settings.iterate.clone(),
            checkpoint: "final".into(),
        };
        let args = crate::cli::connect::ConnectArgs {
            a: end(&a_path),
            b: end(&b_path),
            points: settings.points,
            bn: settings.bn,
            train_subset: settings.train_subset,
            test_subset: settings.test_subset,
            bn_subset: settings.bn_subset,
            curve_epochs: settings.curve_epochs,
            curve_lr: None,
            device,
        };
        println!("connecting {} → {}", a.id, b.id);
        match crate::cli::connect::run(&args, stop) {
            Ok(true) => {}
            Ok(false) => {
                println!(
                    "stopped; continue with: valleys sweep {}",
                    dir.root.display()
                );
                return Ok(EXIT_STOPPED);
            }
            Err(e) => {
                failed += 1;
                eprintln!("valleys: connecting {} → {} failed: {e:#}", a.id, b.id);
            }
        }
    }
    Ok(if failed > 0 {
        crate::cli::EXIT_FAILURE
    } else {
        0
    })
}
