use super::*;
use crate::probe::ProbePoint;
use crate::probe::plane::PlanePoint;

#[test]
fn bands_cover_every_row_once_and_differ_by_a_row_at_most() {
    for ny in 2..40 {
        for tiles in 1..=ny {
            let bands: Vec<Range<usize>> = (0..tiles).map(|k| rows(ny, tiles, k)).collect();
            let sizes: Vec<usize> = bands.iter().map(|b| b.len()).collect();
            assert!(
                sizes.iter().all(|&s| s >= 1),
                "{ny} rows, {tiles} tiles: {sizes:?}"
            );
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            let all: Vec<usize> = bands.into_iter().flatten().collect();
            assert_eq!(all, (0..ny).collect::<Vec<_>>());
        }
    }
    assert!(check_tiles(0, 9).is_err());
    assert!(check_tiles(10, 9).unwrap_err().0.contains("1..=9"));
    assert!(check_tiles(9, 9).is_ok());
}

#[test]
fn the_tiles_orders_are_the_planes_order_split_by_rows() {
    let (nx, ny) = (9, 11);
    let whole = coarse_to_fine(nx, ny);
    for tiles in [1, 2, 4, 11] {
        let mut rebuilt: Vec<(usize, usize)> =
            (0..tiles).flat_map(|k| order(nx, ny, tiles, k)).collect();
        assert_eq!(rebuilt.len(), nx * ny);
        // Each tile keeps the whole plane's relative order.
        for k in 0..tiles {
            let mine = order(nx, ny, tiles, k);
            let theirs: Vec<_> = whole
                .iter()
                .copied()
                .filter(|p| rows(ny, tiles, k).contains(&p.1))
                .collect();
            assert_eq!(mine, theirs);
        }
        rebuilt.sort();
        let mut all = whole.clone();
        all.sort();
        assert_eq!(rebuilt, all);
    }
}

fn point(x: f64, y: f64, loss: f64) -> PlanePoint {
    PlanePoint {
        x,
        y,
        measured: ProbePoint {
            t: x,
            train_loss: loss,
            train_acc: 0.5,
            test_loss: loss + 1.0,
            test_acc: 0.25,
            train_loss_se: None,
            test_loss_se: None,
        },
    }
}

fn plan(tiles: usize) -> TilePlan {
    let mut skeleton = crate::probe::plane::valley_fixture("001-swa-sgd-swa", 3, 4);
    skeleton.points.clear();
    skeleton.cost.seconds = 2.0;
    TilePlan {
        plane: skeleton,
        tiles,
        checkpoint: "c".into(),
        device: "cpu".into(),
        seconds_per_point: 1.0,
        executor: "local".into(),
        job_id: None,
        pid: None,
        process: None,
    }
}

fn measured(plan: &TilePlan, k: usize, upto: usize, seconds: f64) -> TileProgress {
    let (xs, ys) = (&plan.plane.xs, &plan.plane.ys);
    TileProgress {
        tile: k,
        points: order(xs.len(), ys.len(), plan.tiles, k)
            .into_iter()
            .take(upto)
            .map(|(i, j)| TilePoint {
                column: i,
                row: j,
                point: point(xs[i], ys[j], (i * 10 + j) as f64),
            })
            .collect(),
        seconds,
        attempts: 1,
    }
}

#[test]
fn finished_tiles_merge_row_by_row_with_every_tiles_cost() {
    let plan = plan(3);
    let mut progress: Vec<Option<TileProgress>> = (0..3)
        .map(|k| Some(measured(&plan, k, usize::MAX, 1.5)))
        .collect();
    progress[1] = Some(measured(&plan, 1, 2, 1.0));
    assert!(merge(&plan, &progress).is_none(), "tile 1 is not finished");
    let states = states(&plan, &progress);
    assert_eq!(states[1].done, 2);
    assert_eq!(states[1].total, 3, "tile 1 holds row 1 alone: 3 points");
    progress[1] = Some(measured(&plan, 1, usize::MAX, 1.5));
    let plane = merge(&plan, &progress).expect("every tile finished");
    assert_eq!(plane.points.len(), 12);
    for (k, p) in plane.points.iter().enumerate() {
        let (i, j) = (k % 3, k / 3);
        assert_eq!((p.x, p.y), (plan.plane.xs[i], plan.plane.ys[j]));
        assert_eq!(p.measured.train_loss, (i * 10 + j) as f64);
    }
    assert_eq!(plane.cost.seconds, 2.0 + 3.0 * 1.5);
    assert_eq!(plane.cost.points, 12);
    assert_eq!(plane.cost.seconds_per_point, 6.5 / 12.0);
    use crate::stored::Stored;
    plane.check().unwrap();
}

#[test]
fn progress_that_does_not_follow_the_order_is_measured_again() {
    let plan = plan(2);
    let mut progress = measured(&plan, 0, 3, 1.0);
    let order = order(3, 4, 2, 0);
    assert_eq!(resume_at(&order, &progress), 3);
    progress.points.swap(0, 1);
    assert_eq!(resume_at(&order, &progress), 0);
    let other = measured(&plan, 1, 2, 1.0);
    assert_eq!(resume_at(&order, &other), 0, "another tile's points");
}

#[test]
fn progress_files_round_trip_and_a_torn_one_is_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = TilesDir {
        root: tmp.path().join("001-swa-sgd-swa.tiles"),
    };
    let plan = plan(2);
    dir.write_plan(&plan).unwrap();
    assert_eq!(dir.read_plan().unwrap(), plan);
    assert!(TilesDir::open(&dir.root).is_ok());
    assert!(
        TilesDir::open(tmp.path())
            .unwrap_err()
            .0
            .contains("plan.json")
    );
    let progress = measured(&plan, 1, 2, 1.0);
    dir.write_progress(&progress).unwrap();
    assert_eq!(dir.read_progress(1), Some(progress));
    assert_eq!(dir.read_progress(0), None);
    std::fs::write(dir.progress_path(0), "{\"tile\": 0, \"poi").unwrap();
    assert_eq!(dir.read_progress(0), None);
    std::fs::write(dir.plan_path(), "{}").unwrap();
    let e = dir.read_plan().unwrap_err().0;
    assert!(e.contains("plan.json") && !e.contains('\n'), "{e}");
}
