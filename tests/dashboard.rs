//! The dashboard in a real terminal (tmux): `valleys open` reopens a finished run for live
//! probing, offers only what works, and changes nothing the run wrote.

mod common;

use common::{Tmux, snapshot, trained_tiny};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[test]
fn open_probes_a_finished_run_from_the_keyboard_and_leaves_the_run_as_it_was() {
    let tmp = trained_tiny();
    let d = tmp.path();
    let files = |dir: &std::path::Path| -> BTreeMap<_, _> { snapshot(dir).into_iter().collect() };
    let before = files(&d.join("r"));
    let command = format!(
        "{} open r; echo exit=$? > done; sleep 60",
        env!("CARGO_BIN_EXE_valleys")
    );
    let Some(tmux) = Tmux::start(d, "open", &command) else {
        return;
    };
    let s = tmux.wait_for(
        &|s| s.contains("FINISHED") && s.contains("history: 1 epochs"),
        "the finished run with its history",
    );
    assert!(!s.contains("space pause"), "nothing to pause:\n{s}");
    assert!(s.contains("p probe"), "{s}");
    tmux.send("p");
    std::thread::sleep(Duration::from_millis(500));
    tmux.send("Enter");
    let probes = d.join("r/probes");
    let deadline = Instant::now() + Duration::from_secs(90);
    // Through the SWA average (the tiny run averages its one epoch).
    while !probes.join("001-uniform-swa.json").is_file() {
        assert!(
            Instant::now() < deadline,
            "no probe written:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    tmux.wait_for(&|s| s.contains("001-uniform-swa"), "the probe on screen");
    tmux.send("q");
    assert_eq!(tmux.wait_for_exit(&d.join("done")), "exit=0");
    // Everything the run wrote is as it was; the probe added its own files.
    let mut after = files(&d.join("r"));
    after.retain(|path, _| !path.starts_with(&probes));
    let changed: Vec<_> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(changed.is_empty(), "changed: {changed:?}");
}

#[test]
fn watch_on_a_sweep_lists_its_runs_and_opens_one() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    common::write(d, "base.yaml", common::TINY);
    common::write(
        d,
        "s.yaml",
        "name: w\nexperiment: base.yaml\naxes: {seed: [1, 2]}\n",
    );
    let said = common::run(d, &["sweep", "s.yaml", "--out", "s"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let command = format!(
        "{} watch s; echo exit=$? > done; sleep 60",
        env!("CARGO_BIN_EXE_valleys")
    );
    let Some(tmux) = Tmux::start(d, "sweep", &command) else {
        return;
    };
    let s = tmux.wait_for(&|s| s.contains("2 runs · 2 done"), "the sweep table");
    assert!(s.contains("000-seed=1") && s.contains("001-seed=2"), "{s}");
    tmux.send("Down");
    tmux.send("Enter");
    tmux.wait_for(
        &|s| s.contains("valleys · t ·") && s.contains("epoch 1/1"),
        "the run's dashboard",
    );
    tmux.send("q");
    tmux.wait_for(&|s| s.contains("2 runs · 2 done"), "the table again");
    tmux.send("g");
    tmux.wait_for(&|s| s.contains("mean (line)"), "the groups' curves");
    tmux.send("q");
    assert_eq!(tmux.wait_for_exit(&d.join("done")), "exit=0");
    drop(tmux);
    // Run directories named one by one make the same table.
    let command = format!(
        "{} watch s/runs/000-seed=1 s/runs/001-seed=2; echo exit=$? > done2; sleep 60",
        env!("CARGO_BIN_EXE_valleys")
    );
    let tmux = Tmux::start(d, "dirs", &command).unwrap();
    tmux.wait_for(
        &|s| s.contains("2 run directories · 2 runs · 2 done") && s.contains("001-seed=2"),
        "the table of two runs",
    );
    tmux.send("q");
    assert_eq!(tmux.wait_for_exit(&d.join("done2")), "exit=0");
}
