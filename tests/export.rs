//! Screenshots, figures and reports: the SVGs parse as XML and hold the expected text and
//! series, the PNGs decode at the right size, report.md's links resolve, and caption numbers
//! come from the run's files.

use quick_xml::Reader;
use quick_xml::events::Event as Xml;
use std::path::Path;
use std::process::Command;

fn parse(svg: &str) -> (usize, Vec<String>) {
    let mut reader = Reader::from_str(svg);
    let (mut elements, mut texts) = (0, Vec::new());
    loop {
        match reader.read_event().expect("well-formed XML") {
            Xml::Start(_) | Xml::Empty(_) => elements += 1,
            Xml::Text(t) => texts.push(t.xml10_content().trim().to_owned()),
            Xml::Eof => break,
            _ => {}
        }
    }
    (elements, texts)
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let reader = decoder.read_info().unwrap();
    let info = reader.info();
    (info.width, info.height)
}

fn svg_size(svg: &str) -> (u32, u32) {
    let grab = |attr: &str| {
        let start = svg.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
        svg[start..]
            .split('"')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            .round() as u32
    };
    (grab("width"), grab("height"))
}

#[test]
fn a_report_of_a_probed_run_has_valid_figures_resolving_links_and_captions_from_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let yaml = "name: rep\nseed: 2\ndata: {dataset: fashion-mnist, train_subset: 512, test_subset: 256}\nmodel: {arch: mlp, hidden: 32}\ntrain: {epochs: 3, batch_size: 64, lr: 0.05}\nswa: {start_epoch: 2}\neval: {train_subset: 256}\n";
    std::fs::write(d.join("x.yaml"), yaml).unwrap();
    let bin = env!("CARGO_BIN_EXE_valleys");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .current_dir(d)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["run", "x.yaml", "--headless", "--out", "r"]);
    run(&[
        "probe",
        "r",
        "--checkpoint",
        "final",
        "--points",
        "9",
        "--range",
        "3",
        "--train-subset",
        "128",
    ]);
    run(&[
        "probe",
        "r",
        "--checkpoint",
        "final",
        "--direction",
        "interp",
        "--points",
        "11",
        "--train-subset",
        "128",
    ]);
    let stdout = run(&["report", "r", "--log"]);
    assert!(stdout.contains("figures (SVG and PNG)"), "{stdout}");

    let report = d.join("r/report");
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    // The machine it ran on (no GPU here).
    assert!(md.contains("Machine: peak memory: resident "), "{md}");
    // Every link resolves.
    let mut links = 0;
    for part in md.split("](").skip(1) {
        let target = part.split(')').next().unwrap();
        assert!(report.join(target).is_file(), "link {target} resolves");
        links += 1;
    }
    assert!(links >= 10, "{links} links");
    // Caption numbers come from the run's files.
    let rows = valleys::rundir::RunDir::open(&d.join("r"))
        .unwrap()
        .read_metrics()
        .unwrap();
    let sgd = rows
        .iter()
        .rev()
        .find(|r| {
            r.iterate == valleys::protocol::Iterate::Sgd
                && r.split == valleys::protocol::Split::Test
        })
        .unwrap();
    assert!(
        md.contains(&format!(
            "SGD test loss {:.4} ({:.1}%)",
            sgd.loss,
            100.0 * sgd.acc
        )),
        "{md}"
    );
    let probes =
        valleys::probe::store::read_all(&valleys::rundir::RunDir::open(&d.join("r")).unwrap()).0;
    let first = probes[0].train_score.as_ref().unwrap();
    assert!(md.contains(&format!("c = {}", valleys::probe::format_c(first.c))));
    assert!(md.contains("```yaml\nname: rep"));

    for entry in std::fs::read_dir(&report).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "svg") {
            let svg = std::fs::read_to_string(&path).unwrap();
            let (elements, texts) = parse(&svg);
            assert!(elements > 20, "{}", path.display());
            let png = path.with_extension("png");
            assert_eq!(png_size(&png), svg_size(&svg), "{}", png.display());
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("training-loss") {
                for want in ["SGD train", "SWA test (dashed)", "SWA starts", "epoch"] {
                    assert!(
                        texts.iter().any(|t| t.contains(want)),
                        "{name} has {want}: {texts:?}"
                    );
                }
                assert!(
                    svg.matches("<polyline").count() + svg.matches("<path").count() >= 4,
                    "four series"
                );
            }
            if name.starts_with("probe-") && name.contains("interp") {
                assert!(
                    texts.iter().any(|t| t == "SWA") && texts.iter().any(|t| t == "SGD"),
                    "{texts:?}"
                );
            }
        }
    }
}

#[test]
fn a_screenshot_reproduces_the_screen_and_carries_its_data() {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use valleys::protocol::{Event, Iterate, MetricRow, Split};
    use valleys::ui::app::App;
    use valleys::ui::theme::Theme;
    let mut app = App::new(
        Theme {
            color: true,
            ascii: false,
        },
        true,
    );
    for epoch in 0..5u32 {
        for (iterate, split) in [(Iterate::Sgd, Split::Train), (Iterate::Sgd, Split::Test)] {
            app.handle_event(Event::Metric(MetricRow {
                epoch,
                step: u64::from(epoch) * 10,
                iterate,
                split,
                loss: 2.0 / f64::from(epoch + 1),
                acc: 0.1 * f64::from(epoch),
                lr: 0.1,
                elapsed_s: f64::from(epoch),
                samples: 100,
                swa_n: None,
            }));
        }
    }
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    terminal
        .draw(|f| valleys::ui::views::render(&app, f))
        .unwrap();
    let buffer = terminal.backend().buffer().clone();
    let tmp = tempfile::tempdir().unwrap();
    let data = valleys::ui::screenshot::screen_data(&app);
    let paths = valleys::ui::screenshot::export(&buffer, &data, tmp.path(), "shot").unwrap();
    let svg = std::fs::read_to_string(tmp.path().join("shot.svg")).unwrap();
    let (_, texts) = parse(&svg);
    assert!(
        texts.iter().any(|t| t.contains("valleys")),
        "the header is text"
    );
    assert!(
        texts.iter().any(|t| t.contains("SGD train")),
        "the legend is text"
    );
    assert!(svg.contains("<circle"), "braille charts become dots");
    assert_eq!(
        png_size(&tmp.path().join("shot.png")),
        (900, 540),
        "100x30 cells of 9x18"
    );
    let csv = std::fs::read_to_string(tmp.path().join("shot-metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 11, "a header and 10 points");
    assert!(
        csv.starts_with("iterate,split,epoch,step,loss,acc\nsgd,train,0,0,2,0\n"),
        "{csv}"
    );
    assert_eq!(paths.len(), 3);
    // Deterministic for a fixed state.
    let again =
        valleys::ui::screenshot::export(&buffer, &data, &tmp.path().join("2"), "shot").unwrap();
    assert_eq!(std::fs::read(&again[0]).unwrap(), svg.as_bytes());
    assert_eq!(
        std::fs::read(&again[1]).unwrap(),
        std::fs::read(&paths[1]).unwrap()
    );
}
