//! Downloads over HTTP(S) into a `.part` file: resumed with a Range request where one is
//! left, retried where the connection breaks, never longer than the pinned length.

use super::{Event, RETRIES};
use crate::data::catalog::{Archive, Check};
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Why a download did not finish: the server's side (try the next URL), or ours (a full
/// disk: no other URL helps).
pub(super) enum Failed {
    Remote(String),
    Local(String),
}

/// Downloads `url` into `part`, resuming what `part` holds, retrying a broken connection a
/// few times. On success `part` holds the whole body (not yet verified). `shown` is the URL
/// as people may read it (without a password).
pub(super) fn download(
    url: &str,
    shown: &str,
    part: &Path,
    archive: &Archive,
    progress: &dyn Fn(Event),
) -> Result<(), Failed> {
    let agent = agent_for(url).map_err(Failed::Local)?;
    let mut tries = 0;
    let kept = || fs::metadata(part).map_or(0, |m| m.len());
    loop {
        let before = kept();
        match attempt(&agent, url, shown, part, archive, progress) {
            Ok(()) => return Ok(()),
            Err(Attempt::Final(why)) => return Err(Failed::Remote(why)),
            Err(Attempt::Local(why)) => return Err(Failed::Local(why)),
            Err(Attempt::Broken(why)) => {
                // The budget is for tries that got nowhere: a connection that breaks every
                // few hundred megabytes still finishes.
                if kept() > before {
                    tries = 0;
                }
                tries += 1;
                if tries > RETRIES || super::stop_requested() {
                    return Err(Failed::Remote(format!("{why} ({tries} tries)")));
                }
                let done = kept();
                progress(Event::Retry {
                    archive,
                    done,
                    reason: &why,
                });
                std::thread::sleep(Duration::from_millis(300 * u64::from(tries)));
            }
        }
    }
}

enum Attempt {
    /// Worth another try from where it stopped.
    Broken(String),
    /// This machine's side failed (the part file cannot be written).
    Local(String),
    /// Not worth another try of this URL (404, a refused connection).
    Final(String),
}

/// An agent for `url`: no proxy for the loopback address; the certificate authorities of
/// SSL_CERT_FILE (a PEM file) instead of the built-in ones when it is set, as for curl and
/// OpenSSL, so that a cluster's own https mirror can be trusted.
fn agent_for(url: &str) -> Result<ureq::Agent, String> {
    let loopback = matches!(
        super::source::host_of(url),
        "127.0.0.1" | "localhost" | "[::1]"
    );
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(30)))
        .user_agent(concat!("valleys/", env!("CARGO_PKG_VERSION")));
    if loopback {
        config = config.proxy(None);
    }
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        let shown = Path::new(&file).display().to_string();
        let pem = fs::read(&file).map_err(|e| format!("SSL_CERT_FILE={shown}: {e}"))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(format!(
                "SSL_CERT_FILE={shown}: no PEM certificate in it; expected the certificate authorities to trust"
            ));
        }
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
                .build(),
        );
    }
    Ok(config.build().into())
}

fn attempt(
    agent: &ureq::Agent,
    url: &str,
    shown: &str,
    part: &Path,
    archive: &Archive,
    progress: &dyn Fn(Event),
) -> Result<(), Attempt> {
    let io = |e: io::Error| Attempt::Local(format!("{}: {e}", part.display()));
    let mut offset = fs::metadata(part).map_or(0, |m| m.len());
    // The exact length of a pinned archive; for a gzipped file, the most its contents' pinned
    // length can take (stored blocks add 5 bytes in 64 KiB), so that no server fills the disk.
    let (pinned_len, cap) = match archive.check {
        Check::Archive { bytes, .. } => (Some(bytes), bytes),
        Check::Gunzipped { bytes, .. } => (None, bytes + bytes / 64 + 65_536),
    };
    if offset > cap {
        fs::remove_file(part).map_err(io)?;
        offset = 0;
    }
    progress(Event::Connecting {
        archive,
        url: shown,
        offset,
    });
    let mut request = agent.get(url);
    if offset > 0 {
        request = request.header("Range", format!("bytes={offset}-"));
    }
    let response = request.call().map_err(|e| match e {
        ureq::Error::Io(ref io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            Attempt::Final("the connection was refused".into())
        }
        ureq::Error::HostNotFound => Attempt::Final("the host name does not resolve".into()),
        // A connection that broke, or a server that went quiet, is worth another try; a name
        // that does not resolve or a network that is unreachable is not.
        ureq::Error::Io(ref io) if transient(io.kind()) => Attempt::Broken(e.to_string()),
        // A server that does not answer at all is not tried again and again.
        ureq::Error::Timeout(_) => Attempt::Final(format!("no answer ({e})")),
        ureq::Error::Rustls(ref tls) => Attempt::Final(format!(
            "the server's certificate is not trusted ({tls}); set SSL_CERT_FILE to a PEM file of the certificate authorities to trust"
        )),
        ureq::Error::Io(io) => Attempt::Final(io.to_string()),
        other => Attempt::Final(other.to_string()),
    })?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    let (append, total) = match status {
        200 => (false, length),
        206 => match header("content-range")
            .as_deref()
            .and_then(parse_content_range)
        {
            Some((start, total)) if start == offset => (true, total.or(length.map(|l| l + start))),
            // A range we did not ask for: start again from the first byte.
            _ => {
                fs::remove_file(part).map_err(io)?;
                return Err(Attempt::Broken(format!(
                    "the server answered a range from byte {offset} with {}",
                    header("content-range").unwrap_or_else(|| "no Content-Range".into())
                )));
            }
        },
        // Nothing after `offset`: the part is whole, or wrong (verification decides).
        416 if offset > 0 => return Ok(()),
        404 => return Err(Attempt::Final("404 Not Found".into())),
        s => return Err(Attempt::Final(format!("HTTP status {s}"))),
    };
    if let Some(total) = total
        && pinned_len.is_none()
        && total > cap
    {
        let _ = fs::remove_file(part);
        return Err(Attempt::Final(format!(
            "the server offers {total} bytes, more than {} can be (at most {cap})",
            archive.name
        )));
    }
    if let (Some(pinned), Some(total)) = (pinned_len, total)
        && pinned != total
    {
        let _ = fs::remove_file(part);
        return Err(Attempt::Final(format!(
            "the server offers {total} bytes, but {} is {pinned} bytes",
            archive.name
        )));
    }
    let start = if append { offset } else { 0 };
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .map_err(io)?;
    progress(Event::Download {
        archive,
        from: shown,
        offset: start,
        total,
    });
    let mut body = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 18];
    let mut done = start;
    let began = Instant::now();
    let mut last_report = Instant::now();
    let result = loop {
        if super::stop_requested() {
            break Err(Attempt::Final("stopped".into()));
        }
        match body.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(e) = file.write_all(&buf[..n]) {
                    break Err(Attempt::Local(format!("{}: {e}", part.display())));
                }
                done += n as u64;
                if done > cap {
                    break Err(Attempt::Final(format!(
                        "the server sent more than the {cap} bytes {} can be",
                        archive.name
                    )));
                }
                if last_report.elapsed() >= Duration::from_millis(100) {
                    last_report = Instant::now();
                    let secs = began.elapsed().as_secs_f64().max(1e-3);
                    progress(Event::Progress {
                        archive,
                        done,
                        total,
                        rate: (done - start) as f64 / secs,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(Attempt::Broken(format!("the connection broke: {e}"))),
        }
    };
    // Whatever arrived is kept durably for the next attempt.
    file.sync_all().map_err(io)?;
    result?;
    if let Some(total) = total
        && done < total
    {
        return Err(Attempt::Broken(format!(
            "the connection closed after {done} of {total} bytes"
        )));
    }
    let secs = began.elapsed().as_secs_f64().max(1e-3);
    progress(Event::Progress {
        archive,
        done,
        total: total.or(Some(done)),
        rate: (done - start) as f64 / secs,
    });
    Ok(())
}

fn transient(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | TimedOut | Interrupted
    )
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`): the start and the total.
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_as_servers_write_them() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some((100, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}
