//! A plane exported for ParaView loads in VTK itself: `valleys report` writes a `.vts` per
//! plane, and VTK's own XML reader (Python) reads
//! back the grid, the surface and every field, equal to the plane's CSV.
//! VTK is installed into tests/.vtk by `make test`; python3 reads it from there.

mod common;

use common::{TINY_BN, run, train};
use std::path::PathBuf;
use std::process::Command;

/// python3 with VTK on its path, or None (after saying how to get it) when VTK is not
/// installed.
fn vtk_python() -> Option<Command> {
    let site = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/.vtk");
    let python = || {
        let mut c = Command::new("python3");
        c.env("PYTHONPATH", &site);
        c
    };
    let here = python()
        .args(["-c", "import vtkmodules.vtkIOXML"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !here {
        eprintln!("skipped: VTK's Python reader is not in tests/.vtk (`make test` installs it)");
    }
    here.then(python)
}

/// Reads a .vts with VTK and prints its dimensions, then one line per point: x y z and every
/// field in the order the file names them (names on the second line).
const READ: &str = r#"
import sys
from vtkmodules.vtkIOXML import vtkXMLStructuredGridReader
reader = vtkXMLStructuredGridReader()
reader.SetFileName(sys.argv[1])
reader.Update()
if reader.GetErrorCode() != 0:
    sys.exit("VTK could not read the file")
grid = reader.GetOutput()
dims = [0, 0, 0]
grid.GetDimensions(dims)
print(*dims)
data = grid.GetPointData()
arrays = [data.GetArray(i) for i in range(data.GetNumberOfArrays())]
print(*[a.GetName() for a in arrays])
for k in range(grid.GetNumberOfPoints()):
    print(*[repr(v) for v in grid.GetPoint(k)], *[repr(a.GetValue(k)) for a in arrays])
"#;

#[test]
fn a_planes_vts_loads_in_vtk_with_its_surface_and_fields() {
    let Some(mut python) = vtk_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let r = train(d, TINY_BN, "r");
    let said = run(
        d,
        &[
            "plane", "r", "--plane", "random", "--points", "5x4", "--ascii",
        ],
    );
    assert_eq!(said.code, Some(0), "{said:?}");
    let said = run(d, &["report", "r"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let vts = r.join("report/plane-001-random-swa.vts");
    let read = python.arg("-c").arg(READ).arg(&vts).output().unwrap();
    let out = String::from_utf8_lossy(&read.stdout);
    assert!(
        read.status.success(),
        "{}{}",
        out,
        String::from_utf8_lossy(&read.stderr)
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("5 4 1"));
    let names: Vec<&str> = lines.next().unwrap().split(' ').collect();
    assert_eq!(
        names,
        [
            "test_loss",
            "train_loss",
            "log10_test_loss",
            "log10_train_loss",
            "test_acc",
            "train_acc",
            "gap"
        ]
    );
    let csv = std::fs::read_to_string(r.join("planes/001-random-swa.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let points: Vec<Vec<f64>> = lines
        .map(|l| l.split(' ').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(points.len(), 20);
    for (p, row) in points.iter().zip(&rows) {
        // CSV: x, y, train_loss, train_acc, test_loss, test_acc, ...
        let (x, y, train, train_acc, test, test_acc) =
            (row[0], row[1], row[2], row[3], row[4], row[5]);
        assert_eq!(&p[..3], &[x, y, test], "the surface is (x, y, test loss)");
        assert_eq!(
            &p[3..],
            &[
                test,
                train,
                test.log10(),
                train.log10(),
                test_acc,
                train_acc,
                test - train
            ],
            "every field as measured, to the bit"
        );
    }
    let md = std::fs::read_to_string(r.join("report/report.md")).unwrap();
    assert!(
        md.contains("(plane-001-random-swa.vts)"),
        "the report links it"
    );
}
