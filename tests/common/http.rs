//! A small HTTP/1.1 file server on the loopback address for the data-fetch tests: it serves
//! byte ranges, and can be told to misbehave once per request (cut the body, lie about its
//! length, crawl), logging every request it answers. It stops when dropped.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server answers one request for a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// The file (or the range asked for), whole.
    Normal,
    /// Announces the whole length, sends this many bytes, then closes the connection.
    CutAfter(usize),
    /// Announces this many bytes more than it has, sends what it has, then closes.
    ClaimsMore(usize),
    /// Announces and sends only this many bytes, as if the file were that long.
    ClaimsLess(usize),
    /// The whole file, 4 KiB at a time with this many milliseconds between pieces.
    Crawl(u64),
    /// Ignores a Range header and sends the whole file with status 200.
    IgnoresRange,
}

/// One request the server answered: the path, the first byte a Range asked for, and the
/// bytes of body it set out to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub path: String,
    pub range_from: Option<u64>,
    pub bytes_sent: usize,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    plans: HashMap<String, VecDeque<Behaviour>>,
    log: Vec<Logged>,
}

pub struct Server {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &st);
                });
            }
        });
        Self { port, state, stop }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Serves `bytes` at `/path`.
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .files
            .insert(path.trim_start_matches('/').to_owned(), bytes);
    }

    /// The next requests for `path` are answered as `plan` says, in order (then normally).
    pub fn plan(&self, path: &str, plan: &[Behaviour]) {
        self.state.lock().unwrap().plans.insert(
            path.trim_start_matches('/').to_owned(),
            plan.iter().copied().collect(),
        );
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// Requests answered for `path` (with a body or not).
    pub fn requests(&self, path: &str) -> Vec<Logged> {
        let path = path.trim_start_matches('/');
        self.log().into_iter().filter(|l| l.path == path).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_owned();
    let mut range_from = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("range")
        {
            range_from = value
                .trim()
                .strip_prefix("bytes=")
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
        }
    }
    let (file, behaviour) = {
        let mut st = state.lock().unwrap();
        let file = st.files.get(&path).cloned();
        let behaviour = st
            .plans
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Behaviour::Normal);
        (file, behaviour)
    };
    let mut out = stream;
    let Some(file) = file else {
        out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        log(state, path, range_from, 0);
        return Ok(());
    };
    let honour_range = behaviour != Behaviour::IgnoresRange;
    let start = match range_from {
        Some(from) if honour_range => from as usize,
        _ => 0,
    };
    if start >= file.len() && start > 0 {
        write!(
            out,
            "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            file.len()
        )?;
        log(state, path, range_from, 0);
        return Ok(());
    }
    let body = &file[start..];
    let (announced, sent) = match behaviour {
        Behaviour::CutAfter(n) => (body.len(), n.min(body.len())),
        Behaviour::ClaimsMore(n) => (body.len() + n, body.len()),
        Behaviour::ClaimsLess(n) => (n.min(body.len()), n.min(body.len())),
        _ => (body.len(), body.len()),
    };
    let head = if start > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n",
            file.len() - 1,
            file.len()
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n")
    };
    // Logged before the body goes out: a client may have what it asked for (and the test
    // read the log) before this thread is scheduled again.
    log(state, path, range_from, sent);
    out.write_all(head.as_bytes())?;
    let piece_len = if matches!(behaviour, Behaviour::Crawl(_)) {
        4096
    } else {
        64 * 1024
    };
    for piece in body[..sent].chunks(piece_len) {
        if out.write_all(piece).is_err() {
            break;
        }
        if let Behaviour::Crawl(ms) = behaviour {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
    let _ = out.flush();
    let _ = out.shutdown(std::net::Shutdown::Both);
    Ok(())
}

fn log(state: &Mutex<State>, path: String, range_from: Option<u64>, bytes_sent: usize) {
    state.lock().unwrap().log.push(Logged {
        path,
        range_from,
        bytes_sent,
    });
}
