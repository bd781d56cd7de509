//! How valleys writes times, counts and sizes for people: "1:02:03", "77 562", "1.5 KiB".
//! A leaf: everything that prints may use it, it uses nothing of valleys.

/// "0:31 elapsed · ETA 0:23" for a job `done` of `total` after `elapsed` seconds (no ETA
/// before the first is done).
pub fn elapsed_and_left(elapsed: f64, done: usize, total: usize) -> String {
    let mut s = format!("{} elapsed", clock(elapsed));
    if done > 0 {
        let left = elapsed / done as f64 * total.saturating_sub(done) as f64;
        s += &format!(" · ETA {}", clock(left));
    }
    s
}

/// "1:02:03" or "2:03".
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// 77562 -> "77 562".
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// 1536 -> "1.5 KiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// 3.1e12 -> "3.1e12"; small counts as they are.
pub fn human_count(n: u64) -> String {
    if n < 1_000_000 {
        group_thousands(n as usize)
    } else {
        format!("{:.2e}", n as f64)
    }
}

/// `s` cut to `n` characters, the last one an ellipsis when cut.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_counts_and_sizes_read_as_people_write_them() {
        assert_eq!(clock(3723.4), "1:02:03");
        assert_eq!(clock(59.6), "1:00");
        assert_eq!(clock(-3.0), "0:00");
        assert_eq!(elapsed_and_left(10.0, 0, 4), "0:10 elapsed");
        assert_eq!(elapsed_and_left(10.0, 1, 4), "0:10 elapsed · ETA 0:30");
        assert_eq!(group_thousands(77562), "77 562");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_count(4_000_000_000), "4.00e9");
    }
}
