//! Data sets fetched into the cache, against a local HTTP server serving small archives with
//! the real layouts (made here) and their own pinned hashes: resuming, corrupt and lying
//! servers, 404s, mirrors, two fetches at once, and the command line's words when offline.

mod common;

use common::http::{Behaviour, Server};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use valleys::config::DatasetName;
use valleys::data::catalog::{self, Archive, Check, Set};
use valleys::data::fetch::{self, Cache, Event, FetchError, Source};

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/cifar")
            .join(name),
    )
    .unwrap()
}

/// `n` CIFAR-10 records, cycling through the 20 real test images from `from`.
fn cifar10_records(from: usize, n: usize) -> Vec<u8> {
    let all = fixture("cifar10_test20.bin");
    (0..n)
        .flat_map(|i| {
            let k = (from + i) % 20;
            all[k * 3073..(k + 1) * 3073].to_vec()
        })
        .collect()
}

/// A cifar-10-binary.tar.gz with the upstream layout: five training batches of 2 images, a
/// test batch of 4, the class names, and a readme that is not unpacked.
fn cifar10_tarball() -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes).unwrap();
    };
    for i in 1..=5 {
        add(
            &format!("cifar-10-batches-bin/data_batch_{i}.bin"),
            &cifar10_records(2 * i, 2),
        );
    }
    add(
        "cifar-10-batches-bin/test_batch.bin",
        &cifar10_records(0, 4),
    );
    add(
        "cifar-10-batches-bin/batches.meta.txt",
        b"airplane\nautomobile\n",
    );
    add("cifar-10-batches-bin/readme.html", b"<html></html>");
    tar.into_inner().unwrap().finish().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The CIFAR-10 entry of the catalog, pinned to `tarball` and published at `urls`.
fn cifar10_set(tarball: &[u8], urls: Vec<String>) -> &'static Set {
    let real = catalog::set(DatasetName::Cifar10).unwrap();
    let urls: Vec<&'static str> = urls.into_iter().map(leak).collect();
    let archives = vec![Archive {
        name: "cifar-10-binary.tar.gz",
        bytes: tarball.len() as u64,
        check: Check::Archive {
            sha256: leak(sha256(tarball)),
            bytes: tarball.len() as u64,
        },
        urls: Box::leak(urls.into_boxed_slice()),
        members: real.archives[0].members,
    }];
    Box::leak(Box::new(Set {
        archives: Box::leak(archives.into_boxed_slice()),
        ..*real
    }))
}

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::new(level));
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The four IDX files of a 12-image MNIST-like set (raw), in the catalog's order.
fn idx_files() -> Vec<(&'static str, Vec<u8>)> {
    let n = 12u32;
    let images = |count: u32| {
        let mut v = [0x803u32, count, 28, 28]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect::<Vec<u8>>();
        // Noise, so that the gzipped files are about as long as the raw ones.
        let mut x = 0x9e37_79b9u32 ^ count;
        v.extend((0..count * 784).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        v
    };
    let labels = |count: u32| {
        let mut v = [0x801u32, count]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect::<Vec<u8>>();
        v.extend((0..count).map(|i| (i % 10) as u8));
        v
    };
    vec![
        ("train-images-idx3-ubyte", images(n)),
        ("train-labels-idx1-ubyte", labels(n)),
        ("t10k-images-idx3-ubyte", images(4)),
        ("t10k-labels-idx1-ubyte", labels(4)),
    ]
}

/// The MNIST entry of the catalog, pinned to the gunzipped contents of [`idx_files`].
fn mnist_set(url: &str) -> &'static Set {
    let real = catalog::set(DatasetName::Mnist).unwrap();
    let urls: &'static [&'static str] = Box::leak(vec![leak(url.to_owned())].into_boxed_slice());
    let archives: Vec<Archive> = idx_files()
        .into_iter()
        .map(|(name, raw)| Archive {
            name: leak(format!("{name}.gz")),
            bytes: gzip(&raw, 9).len() as u64,
            check: Check::Gunzipped {
                sha256: leak(sha256(&raw)),
                bytes: raw.len() as u64,
                file: name,
            },
            urls,
            members: &[],
        })
        .collect();
    Box::leak(Box::new(Set {
        archives: Box::leak(archives.into_boxed_slice()),
        ..*real
    }))
}

/// A local server publishing the fixture CIFAR-10 tarball, its catalog entry, and an empty
/// folder for a cache.
fn served_cifar10() -> (Server, &'static Set, tempfile::TempDir) {
    let server = Server::start();
    let tarball = cifar10_tarball();
    server.put("kriz/cifar-10-binary.tar.gz", tarball.clone());
    let set = cifar10_set(&tarball, vec![format!("{}kriz/", server.url())]);
    (server, set, tempfile::tempdir().unwrap())
}

/// Every event's kind, for checks of what a fetch said.
fn kind(e: &Event) -> String {
    match e {
        Event::Waiting { .. } => "waiting".into(),
        Event::Connecting { offset, .. } => format!("connecting@{offset}"),
        Event::Download { offset, .. } => format!("download@{offset}"),
        Event::Progress { .. } => "progress".into(),
        Event::Retry { done, .. } => format!("retry@{done}"),
        Event::Verify { .. } => "verify".into(),
        Event::Ready { .. } => "ready".into(),
    }
}

fn read_cached_cifar(dir: &Path) -> valleys::data::RawDataset {
    let yaml = format!("dataset: cifar10\ndir: {}", dir.display());
    let cfg: valleys::config::DataConfig = serde_yaml::from_str(&yaml).unwrap();
    valleys::data::read(&cfg, 1).unwrap()
}

#[test]
fn a_set_is_downloaded_verified_and_unpacked_whole() {
    let server = Server::start();
    let tarball = cifar10_tarball();
    server.put("kriz/cifar-10-binary.tar.gz", tarball.clone());
    let set = cifar10_set(&tarball, vec![format!("{}kriz/", server.url())]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::at(tmp.path());
    let said = Mutex::new(Vec::new());
    let progress = |e: Event| said.lock().unwrap().push(kind(&e));
    let dir = fetch::ensure(&cache, set, &Source::Upstream, &progress).unwrap();
    let said = said.lock().unwrap().clone();
    assert_eq!(&said[..2], ["connecting@0", "download@0"], "{said:?}");
    assert_eq!(&said[said.len() - 2..], ["verify", "ready"], "{said:?}");
    assert_eq!(dir, tmp.path().join("cifar10"));
    let data = read_cached_cifar(&dir);
    assert_eq!(
        (data.train.len(), data.test.len(), data.classes),
        (10, 4, 10)
    );
    assert!(
        !dir.join("cifar-10-batches-bin/readme.html").exists(),
        "only the listed members"
    );
    let manifest = cache.cached(set).expect("whole");
    assert_eq!(manifest.files.len(), 7);
    assert_eq!(cache.verify(set), Some(vec![]));
    assert!(
        !tmp.path().join(".downloads/cifar10").exists(),
        "the download is gone"
    );
    // Cached: no second request.
    fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap();
    assert_eq!(server.requests("kriz/cifar-10-binary.tar.gz").len(), 1);
}

#[test]
fn a_cut_connection_resumes_where_it_broke() {
    let server = Server::start();
    let tarball = cifar10_tarball();
    let path = "kriz/cifar-10-binary.tar.gz";
    server.put(path, tarball.clone());
    server.plan(path, &[Behaviour::CutAfter(10_000)]);
    let set = cifar10_set(&tarball, vec![format!("{}kriz/", server.url())]);
    let tmp = tempfile::tempdir().unwrap();
    let said = Mutex::new(Vec::new());
    let progress = |e: Event| said.lock().unwrap().push(kind(&e));
    fetch::ensure(&Cache::at(tmp.path()), set, &Source::Upstream, &progress).unwrap();
    assert!(said.lock().unwrap().contains(&"retry@10000".to_owned()));
    let log = server.requests(path);
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].range_from, None);
    assert_eq!(log[1].range_from, Some(10_000), "resumed, not restarted");
    assert_eq!(log[0].bytes_sent + log[1].bytes_sent, tarball.len());
}

#[test]
fn a_download_left_by_a_killed_process_is_resumed_by_the_next() {
    let server = Server::start();
    let tarball = cifar10_tarball();
    let path = "kriz/cifar-10-binary.tar.gz";
    server.put(path, tarball.clone());
    let set = cifar10_set(&tarball, vec![format!("{}kriz/", server.url())]);
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp
        .path()
        .join(".downloads/cifar10/cifar-10-binary.tar.gz.part");
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    let half = tarball.len() / 2;
    std::fs::write(&part, &tarball[..half]).unwrap();
    let cache = Cache::at(tmp.path());
    assert!(
        cache.cached(set).is_none(),
        "a part never passes for complete"
    );
    fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap();
    let log = server.requests(path);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].range_from, Some(half as u64));
    assert_eq!(log[0].bytes_sent, tarball.len() - half);
    // A server that ignores the range: the part is started again, not glued to a whole file.
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp
        .path()
        .join(".downloads/cifar10/cifar-10-binary.tar.gz.part");
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    std::fs::write(&part, &tarball[..half]).unwrap();
    server.plan(path, &[Behaviour::IgnoresRange]);
    fetch::ensure(&Cache::at(tmp.path()), set, &Source::Upstream, &|_| {}).unwrap();
    assert_eq!(Cache::at(tmp.path()).verify(set), Some(vec![]));
}

#[test]
fn a_corrupt_archive_is_named_with_both_hashes_and_discarded() {
    let server = Server::start();
    let tarball = cifar10_tarball();
    let mut corrupt = tarball.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x55;
    server.put("kriz/cifar-10-binary.tar.gz", corrupt.clone());
    let set = cifar10_set(&tarball, vec![format!("{}kriz/", server.url())]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::at(tmp.path());
    let err = fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FetchError::Hash { .. }), "{text}");
    assert_eq!(
        text,
        format!(
            "cifar-10-binary.tar.gz: the file has SHA-256 {}, expected {}; the download was discarded",
            sha256(&corrupt),
            sha256(&tarball)
        )
    );
    assert!(!text.contains('\n'));
    assert!(cache.cached(set).is_none());
    assert!(!tmp.path().join("cifar10").exists());
    assert!(
        !tmp.path()
            .join(".downloads/cifar10/cifar-10-binary.tar.gz.part")
            .exists(),
        "a download that does not verify is not kept to be resumed"
    );
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".staging"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_server_that_lies_about_the_length_never_yields_a_complete_file() {
    let server = Server::start();
    let tarball = cifar10_tarball();
    let path = "kriz/cifar-10-binary.tar.gz";
    server.put(path, tarball.clone());
    let set = cifar10_set(&tarball, vec![format!("{}kriz/", server.url())]);
    // A length other than the pinned one, longer or shorter: refused before a byte is kept.
    for lie in [Behaviour::ClaimsMore(5000), Behaviour::ClaimsLess(1000)] {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::at(tmp.path());
        server.plan(path, &[lie]);
        let err = fetch::ensure(&cache, set, &Source::Upstream, &|_| {})
            .unwrap_err()
            .to_string();
        let offered = match lie {
            Behaviour::ClaimsMore(n) => tarball.len() + n,
            _ => 1000,
        };
        assert!(
            err.contains(&format!(
                "the server offers {offered} bytes, but cifar-10-binary.tar.gz is {} bytes",
                tarball.len()
            )),
            "{err}"
        );
        assert!(!tmp.path().join("cifar10").exists());
        assert_eq!(cache.partial_bytes(set), 0);
    }
    // Files without a pinned length (checked by their contents): a body shorter than
    // announced is resumed, and what is kept is only ever verified whole.
    let set = mnist_set(&format!("{}mnist/", server.url()));
    for (name, raw) in idx_files() {
        server.put(&format!("mnist/{name}.gz"), gzip(&raw, 9));
    }
    let images = "mnist/train-images-idx3-ubyte.gz";
    server.plan(images, &[Behaviour::ClaimsMore(5000); 3]);
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::at(tmp.path());
    fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap();
    assert_eq!(cache.verify(set), Some(vec![]));
    // Cut after 500 bytes, then on every try before a byte: the fetch gives up once its tries
    // get nowhere, keeps what arrived, and the next one finishes it.
    let mut cuts = vec![Behaviour::CutAfter(500)];
    cuts.extend([Behaviour::CutAfter(0); 5]);
    server.plan(images, &cuts);
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::at(tmp.path());
    let err = fetch::ensure(&cache, set, &Source::Upstream, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot download train-images-idx3-ubyte.gz"),
        "{err}"
    );
    assert!(err.contains("the next fetch resumes it"), "{err}");
    assert!(cache.cached(set).is_none() && !tmp.path().join("mnist").exists());
    assert_eq!(cache.partial_bytes(set), 500);
    fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap();
    assert_eq!(cache.verify(set), Some(vec![]));
    assert_eq!(
        server.requests(images).last().unwrap().range_from,
        Some(500)
    );
}

#[test]
fn a_missing_file_tries_the_next_url_and_then_says_what_to_do_offline() {
    let server = Server::start();
    let tarball = cifar10_tarball();
    server.put("second/cifar-10-binary.tar.gz", tarball.clone());
    let set = cifar10_set(
        &tarball,
        vec![
            format!("{}first/", server.url()),
            format!("{}second/", server.url()),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    fetch::ensure(&Cache::at(tmp.path()), set, &Source::Upstream, &|_| {}).unwrap();
    assert_eq!(server.requests("first/cifar-10-binary.tar.gz").len(), 1);
    let set = cifar10_set(&tarball, vec![format!("{}nowhere/", server.url())]);
    let tmp = tempfile::tempdir().unwrap();
    let err = fetch::ensure(&Cache::at(tmp.path()), set, &Source::Upstream, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "cifar10: cannot download cifar-10-binary.tar.gz ({}) from upstream: {}nowhere/cifar-10-binary.tar.gz: 404 Not Found; without internet, run `valleys data fetch cifar10` where there is internet",
            valleys::format::human_bytes(tarball.len() as u64),
            server.url()
        )),
        "{err}"
    );
    assert!(
        err.contains("VALLEYS_DATA_MIRROR=DIR") && !err.contains('\n'),
        "{err}"
    );
    assert!(!tmp.path().join("cifar10").exists());
}

#[test]
fn a_mirror_directory_or_url_serves_instead_of_upstream() {
    let tarball = cifar10_tarball();
    // Upstream is unreachable: only the mirror can serve.
    let set = cifar10_set(&tarball, vec!["http://127.0.0.1:9/".into()]);
    let mirror = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let source = Source::parse(&mirror.path().display().to_string()).unwrap();
    let err = fetch::ensure(&Cache::at(tmp.path()), set, &source, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "VALLEYS_DATA_MIRROR={}: neither cifar10/cifar-10-binary.tar.gz nor cifar-10-binary.tar.gz is there; put cifar-10-binary.tar.gz",
            mirror.path().display()
        )),
        "{err}"
    );
    std::fs::create_dir(mirror.path().join("cifar10")).unwrap();
    let in_mirror = mirror.path().join("cifar10/cifar-10-binary.tar.gz");
    std::fs::write(&in_mirror, &tarball).unwrap();
    let dir = fetch::ensure(&Cache::at(tmp.path()), set, &source, &|_| {}).unwrap();
    assert_eq!(read_cached_cifar(&dir).train.len(), 10);
    assert!(in_mirror.is_file(), "the mirror's copy is left alone");
    // A mirror over HTTP, with the file at its top level.
    let server = Server::start();
    server.put("m/cifar-10-binary.tar.gz", tarball.clone());
    let tmp = tempfile::tempdir().unwrap();
    let source = Source::parse(&format!("{}m", server.url())).unwrap();
    fetch::ensure(&Cache::at(tmp.path()), set, &source, &|_| {}).unwrap();
    let log = server.log();
    assert_eq!(log[0].path, "m/cifar10/cifar-10-binary.tar.gz", "{log:?}");
    assert_eq!(log[1].path, "m/cifar-10-binary.tar.gz");
}

#[test]
fn two_fetches_of_one_set_at_once_download_it_once() {
    let server = Server::start();
    let tarball = cifar10_tarball();
    let path = "kriz/cifar-10-binary.tar.gz";
    server.put(path, tarball.clone());
    // Slow enough that the second fetch starts while the first downloads.
    server.plan(path, &[Behaviour::Crawl(150)]);
    let set = cifar10_set(&tarball, vec![format!("{}kriz/", server.url())]);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_owned();
    let waited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let root = root.clone();
            let waited = waited.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200 * i));
                fetch::ensure(&Cache::at(&root), set, &Source::Upstream, &|e| {
                    if matches!(e, Event::Waiting { .. }) {
                        waited.store(true, std::sync::atomic::Ordering::SeqCst);
                    }
                })
                .unwrap()
            })
        })
        .collect();
    let dirs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(dirs[0], dirs[1]);
    assert_eq!(server.requests(path).len(), 1, "one download");
    assert!(
        waited.load(std::sync::atomic::Ordering::SeqCst),
        "the second waited"
    );
    assert_eq!(read_cached_cifar(&dirs[1]).test.len(), 4);
}

#[test]
fn idx_files_are_checked_by_their_gunzipped_contents() {
    let server = Server::start();
    let set = mnist_set(&format!("{}mnist/", server.url()));
    for (i, (name, raw)) in idx_files().into_iter().enumerate() {
        // Recompressed at another level (as a distribution may ship them): still verifies.
        server.put(
            &format!("mnist/{name}.gz"),
            gzip(&raw, if i % 2 == 0 { 1 } else { 9 }),
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::at(tmp.path());
    let dir = fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap();
    let yaml = format!("dataset: mnist\ndir: {}", dir.display());
    let cfg: valleys::config::DataConfig = serde_yaml::from_str(&yaml).unwrap();
    let data = valleys::data::read(&cfg, 1).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (12, 4));
    assert_eq!(cache.verify(set), Some(vec![]));
    // One image changed: named by its gunzipped contents, nothing cached.
    let mut files = idx_files();
    files[2].1[100] ^= 1;
    server.put("mnist/t10k-images-idx3-ubyte.gz", gzip(&files[2].1, 6));
    let tmp = tempfile::tempdir().unwrap();
    let err = fetch::ensure(&Cache::at(tmp.path()), set, &Source::Upstream, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("t10k-images-idx3-ubyte.gz: its gunzipped contents has SHA-256"),
        "{err}"
    );
    assert!(!tmp.path().join("mnist").exists());
    // Not gzip at all.
    server.put(
        "mnist/t10k-images-idx3-ubyte.gz",
        b"<html>moved</html>".to_vec(),
    );
    let err = fetch::ensure(&Cache::at(tmp.path()), set, &Source::Upstream, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("t10k-images-idx3-ubyte.gz: not a whole gzip file"),
        "{err}"
    );
}

#[test]
fn a_cached_set_that_changed_on_disk_does_not_verify() {
    let (_server, set, tmp) = served_cifar10();
    let cache = Cache::at(tmp.path());
    let dir = fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap();
    let batch = dir.join("cifar-10-batches-bin/data_batch_3.bin");
    let mut bytes = std::fs::read(&batch).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&batch, &bytes).unwrap();
    let problems = cache.verify(set).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("data_batch_3.bin: SHA-256"),
        "{problems:?}"
    );
    // A file cut short: the set is no longer whole, so a run fetches it again.
    std::fs::write(&batch, &bytes[..100]).unwrap();
    assert!(cache.cached(set).is_none());
    fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap();
    assert_eq!(cache.verify(set), Some(vec![]));
}

/// The binary, in `dir`, with its data cache under `dir/cache` and the mirror given.
fn valleys_offline(dir: &Path, mirror: &str, args: &[&str]) -> common::Said {
    common::valleys(dir)
        .args(args)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("VALLEYS_DATA_MIRROR", mirror)
        .output()
        .unwrap()
        .into()
}

const PRESET: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/experiments/paper/preresnet164-cifar10.yaml"
);

const TWO_STEPS: &[&str] = &[
    "--set",
    "data.train_subset=4",
    "--set",
    "data.test_subset=2",
    "--set",
    "train.epochs=1",
    "--set",
    "train.batch_size=2",
    "--set",
    "eval.train_subset=2",
    "--set",
    "swa.start_epoch=1",
];

#[test]
fn offline_with_nothing_cached_a_run_says_which_file_to_put_where_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    std::fs::create_dir(&mirror).unwrap();
    let said = valleys_offline(
        tmp.path(),
        &mirror.display().to_string(),
        &["run", PRESET, "--headless"],
    );
    assert_eq!(said.code, Some(2), "{said:?}");
    let expected = format!(
        "valleys: error: VALLEYS_DATA_MIRROR={}: neither cifar10/cifar-10-binary.tar.gz nor cifar-10-binary.tar.gz is there; put cifar-10-binary.tar.gz (162.2 MiB, from https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz) in cifar10/ there\n",
        mirror.display()
    );
    assert_eq!(said.stderr, expected);
    // A mirror URL that does not answer: the reason, and each way out, on one line.
    let said = valleys_offline(
        tmp.path(),
        "http://127.0.0.1:9/",
        &["run", PRESET, "--headless"],
    );
    assert_eq!(said.code, Some(2), "{said:?}");
    let line = said.stderr.trim_end();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.starts_with("valleys: error: cifar10: cannot download cifar-10-binary.tar.gz (162.2 MiB) from the mirror http://127.0.0.1:9/: http://127.0.0.1:9/cifar10/cifar-10-binary.tar.gz: "),
        "{line}"
    );
    assert!(
        line.contains(&format!("run `valleys data fetch cifar10` where there is internet (it fills {}/cache/valleys/data)", tmp.path().display())),
        "{line}"
    );
    assert!(
        line.ends_with("or set data.dir to an unpacked copy"),
        "{line}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "mirror" && n != "cache")
        .collect();
    assert!(left.is_empty(), "no run directory: {left:?}");
}

#[test]
fn a_run_reads_a_filled_cache_without_the_network_and_data_list_verifies_it() {
    let tmp = tempfile::tempdir().unwrap();
    // Filled as `valleys data fetch` fills it, from an archive with the upstream layout.
    let tarball = cifar10_tarball();
    let server = Server::start();
    server.put("cifar-10-binary.tar.gz", tarball.clone());
    let set = cifar10_set(&tarball, vec![server.url()]);
    let cache = Cache::at(tmp.path().join("cache/valleys/data"));
    fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap();
    drop(server);
    let mut args = vec!["run", PRESET, "--headless", "--out", "r"];
    args.extend(TWO_STEPS);
    let said = valleys_offline(tmp.path(), "http://127.0.0.1:9/", &args);
    assert_eq!(said.code, Some(0), "{said:?}");
    assert!(
        said.stdout.contains(&format!(
            "data:   {}/cache/valleys/data/cifar10/cifar-10-batches-bin (10 train from 5 file(s) / 4 test)",
            tmp.path().display()
        )),
        "{}",
        said.stdout
    );
    let said = valleys_offline(tmp.path(), "", &["data", "list"]);
    assert_eq!(said.code, Some(0), "{said:?}");
    let row = |name: &str| {
        said.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{}", said.stdout))
            .to_owned()
    };
    assert!(row("cifar10").ends_with(": verifies"), "{}", said.stdout);
    assert!(row("cifar10").contains(", 7 files, "), "{}", said.stdout);
    assert_eq!(
        row("cifar100"),
        "cifar100      not cached (160.7 MiB to download)"
    );
    assert!(said.stdout.contains("mirror:     none"), "{}", said.stdout);
    // A changed byte: named, and the listing fails.
    let batch = cache.dir(set).join("cifar-10-batches-bin/test_batch.bin");
    let mut bytes = std::fs::read(&batch).unwrap();
    bytes[9] ^= 1;
    std::fs::write(&batch, &bytes).unwrap();
    let said = valleys_offline(tmp.path(), "", &["data", "list"]);
    assert_eq!(said.code, Some(1), "{said:?}");
    assert!(said.stdout.contains("DOES NOT VERIFY: "), "{}", said.stdout);
    assert!(
        said.stdout.contains("test_batch.bin: SHA-256 "),
        "{}",
        said.stdout
    );
    // `data fetch` hashes a cached set: this one is fetched again (here it cannot be).
    let said = valleys_offline(
        tmp.path(),
        "http://127.0.0.1:9/",
        &["data", "fetch", "cifar10"],
    );
    assert_eq!(said.code, Some(1), "{said:?}");
    assert!(
        said.stderr
            .starts_with("valleys: cifar10: the cached copy does not verify ("),
        "{}",
        said.stderr
    );
    assert!(
        said.stderr
            .contains("; fetching it again (it stays until a verified copy replaces it)\n"),
        "{}",
        said.stderr
    );
    assert!(batch.is_file(), "kept while no verified copy came");
    // A folder without its manifest is not whole: `data list` says so and fails.
    let said = valleys_offline(tmp.path(), "", &["data", "list"]);
    assert_eq!(said.code, Some(1), "{said:?}");
    assert!(
        said.stdout
            .contains("NOT WHOLE: no .complete.json: a folder valleys did not fetch whole"),
        "{}",
        said.stdout
    );
}

#[test]
fn data_fetch_refuses_unknown_names_and_files_that_do_not_match_their_pins() {
    let tmp = tempfile::tempdir().unwrap();
    let said = valleys_offline(tmp.path(), "", &["data", "fetch", "cifar10", "imagenet"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert_eq!(
        said.stderr,
        "valleys: error: data fetch: 'imagenet' is not a data set valleys fetches; expected one of cifar10, cifar100, mnist, fashion-mnist or all\n"
    );
    assert!(
        !tmp.path().join("cache").exists(),
        "nothing fetched before the names are checked"
    );
    // A mirror holding a file that is not the pinned archive.
    let mirror = tmp.path().join("mirror");
    std::fs::create_dir(&mirror).unwrap();
    std::fs::write(mirror.join("cifar-10-binary.tar.gz"), b"not the archive").unwrap();
    let said = valleys_offline(
        tmp.path(),
        &mirror.display().to_string(),
        &["data", "fetch", "cifar10"],
    );
    assert_eq!(said.code, Some(1), "{said:?}");
    assert_eq!(
        said.stderr.lines().last().unwrap(),
        format!(
            "valleys: error: {}: the file is 15 bytes, expected 170052171; the mirror's copy was left as it is",
            mirror.join("cifar-10-binary.tar.gz").display()
        )
    );
    assert!(
        mirror.join("cifar-10-binary.tar.gz").is_file(),
        "the mirror is not ours to delete"
    );
    assert!(!tmp.path().join("cache/valleys/data/cifar10").exists());
}

#[test]
fn a_small_file_that_gunzips_to_gigabytes_is_cut_at_its_pinned_length() {
    let server = Server::start();
    let set = mnist_set(&format!("{}mnist/", server.url()));
    for (name, raw) in idx_files() {
        server.put(&format!("mnist/{name}.gz"), gzip(&raw, 9));
    }
    let pinned = idx_files()[0].1.len() as u64;
    // 64 MiB of zeros in a few tens of kilobytes.
    server.put(
        "mnist/train-images-idx3-ubyte.gz",
        gzip(&vec![0u8; 64 << 20], 9),
    );
    let tmp = tempfile::tempdir().unwrap();
    let err = fetch::ensure(&Cache::at(tmp.path()), set, &Source::Upstream, &|_| {})
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "train-images-idx3-ubyte.gz: its gunzipped contents is {} bytes, expected {pinned}; the download was discarded",
            pinned + 1
        )
    );
    let left: u64 = walk_bytes(tmp.path());
    assert!(left < 1 << 20, "{left} bytes left in the cache");
}

fn walk_bytes(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .unwrap()
            .flatten()
            .map(|e| walk_bytes(&e.path()))
            .sum(),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[test]
fn a_manifest_edited_to_name_other_files_makes_the_set_not_whole() {
    let (_server, set, tmp) = served_cifar10();
    let cache = Cache::at(tmp.path());
    let dir = fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap();
    let path = dir.join(".complete.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest["files"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"path": "/etc/hostname", "bytes": 1, "sha256": "00"}));
    std::fs::write(&path, manifest.to_string()).unwrap();
    assert_eq!(
        cache.inspect(set),
        fetch::Held::Damaged(
            "its .complete.json names /etc/hostname, which the set does not hold".into()
        )
    );
    assert_eq!(cache.verify(set), None, "nothing outside the set is hashed");
    std::fs::write(&path, "{").unwrap();
    assert!(matches!(cache.inspect(set), fetch::Held::Damaged(w) if w.contains("does not read")));
    // Fetching again replaces the folder with the whole set.
    fetch::ensure(&cache, set, &Source::Upstream, &|_| {}).unwrap();
    assert_eq!(cache.verify(set), Some(vec![]));
}

#[test]
fn a_missing_name_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let said = valleys_offline(tmp.path(), "", &["data", "fetch"]);
    assert_eq!(said.code, Some(2), "{said:?}");
    assert_eq!(
        said.stderr,
        "valleys: error: the following required arguments were not provided: <NAME>... (valleys --help lists the flags)\n"
    );
}

#[test]
fn a_gzipped_file_longer_than_its_contents_can_be_is_refused_before_it_is_kept() {
    let server = Server::start();
    let set = mnist_set(&format!("{}mnist/", server.url()));
    let raw = idx_files()[0].1.len() as u64;
    let cap = raw + raw / 64 + 65_536;
    server.put(
        "mnist/train-images-idx3-ubyte.gz",
        vec![7u8; 4 * cap as usize],
    );
    let tmp = tempfile::tempdir().unwrap();
    let cache = Cache::at(tmp.path());
    let err = fetch::ensure(&cache, set, &Source::Upstream, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "the server offers {} bytes, more than train-images-idx3-ubyte.gz can be (at most {cap})",
            4 * cap
        )),
        "{err}"
    );
    assert_eq!(cache.partial_bytes(set), 0);
    // Without a length announced the body is cut at the same bound.
    server.plan(
        "mnist/train-images-idx3-ubyte.gz",
        &[Behaviour::ClaimsLess(4 * cap as usize)],
    );
    let said = Mutex::new(Vec::new());
    let err = fetch::ensure(&cache, set, &Source::Upstream, &|e| {
        if let Event::Progress { done, .. } = e {
            said.lock().unwrap().push(done);
        }
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("can be (at most"), "{err}");
    assert!(
        cache.partial_bytes(set) <= cap + (1 << 18),
        "{}",
        cache.partial_bytes(set)
    );
}
