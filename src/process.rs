//! Which process a stored pid names. A pid in a file (a sweep's `jobs.json`, a tiled plane's
//! `plan.json`) is only a number: after the process ended, or after a reboot, the same number
//! may belong to anything of the user's, and an edited file may hold any number at all. So the
//! executors record who they are beside their pid (the boot, the process's start time in clock
//! ticks since that boot, and its executable), and a signal goes only to a process that still
//! is all of that.

use serde::{Deserialize, Serialize};

/// Enough to tell one process from any later one with the same pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    pub pid: u32,
    /// The kernel's id of the boot the process ran in.
    pub boot: String,
    /// Its start time, in clock ticks since that boot (`/proc/PID/stat`, field 22).
    pub started: u64,
    /// Its executable.
    pub exe: String,
}

/// What a stored pid turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The very process that recorded itself: it may be signalled.
    Ours,
    /// No such process any more.
    Gone,
    /// Some other process, or a pid that cannot be proven ours: why, in words.
    NotOurs(String),
}

impl ProcessIdentity {
    /// This process, as a file should record it.
    pub fn this_process() -> Option<Self> {
        Self::of(std::process::id())
    }

    /// The process with `pid` now; `None` when there is none (or `/proc` cannot say).
    pub fn of(pid: u32) -> Option<Self> {
        if pid == 0 {
            return None;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| {
                let text = p.display().to_string();
                // A binary replaced while it runs reads as "PATH (deleted)".
                text.strip_suffix(" (deleted)")
                    .map_or(text.clone(), str::to_owned)
            })
            .unwrap_or_default();
        Some(Self {
            pid,
            boot: boot_id()?,
            started: start_ticks(&stat)?,
            exe,
        })
    }

    /// Whether the process this identity recorded is still running as itself.
    pub fn standing(&self) -> Standing {
        if self.pid <= 1 {
            return Standing::NotOurs(format!(
                "pid {} is never a valleys executor (0 names this process's group, 1 the system)",
                self.pid
            ));
        }
        if self.pid == std::process::id() {
            return Standing::NotOurs(format!("pid {} is this very process", self.pid));
        }
        if boot_id().is_some_and(|b| b != self.boot) {
            return Standing::Gone;
        }
        let Some(now) = Self::of(self.pid) else {
            return Standing::Gone;
        };
        if now.started != self.started {
            return Standing::NotOurs(format!(
                "pid {} is another process now (it started {} clock ticks after boot, the executor at {})",
                self.pid, now.started, self.started
            ));
        }
        if now.exe != self.exe {
            return Standing::NotOurs(format!(
                "pid {} runs {}, not {}",
                self.pid,
                if now.exe.is_empty() {
                    "an executable it does not show us"
                } else {
                    &now.exe
                },
                self.exe
            ));
        }
        Standing::Ours
    }
}

/// The standing of what a file recorded: its pid and, if it has one, the identity beside it.
pub fn standing(pid: u32, identity: Option<&ProcessIdentity>) -> Standing {
    match identity {
        _ if pid <= 1 => ProcessIdentity {
            pid,
            boot: String::new(),
            started: 0,
            exe: String::new(),
        }
        .standing(),
        Some(id) if id.pid == pid => id.standing(),
        Some(id) => Standing::NotOurs(format!(
            "the file names pid {pid} but records the identity of pid {}",
            id.pid
        )),
        None if !crate::platform::process_exists(pid) => Standing::Gone,
        None => Standing::NotOurs(format!(
            "nothing beside pid {pid} says which process wrote it (an older valleys wrote the file), so it is not signalled; stop that process yourself if it is the executor"
        )),
    }
}

/// Sends SIGTERM to the recorded process only if it is [`Standing::Ours`]; the standing found.
pub fn terminate_if_ours(pid: u32, identity: Option<&ProcessIdentity>) -> Standing {
    let standing = standing(pid, identity);
    if standing == Standing::Ours {
        crate::platform::terminate(pid);
    }
    standing
}

/// Cancels the local executor a file records: the line to print when it was asked to stop
/// (`asked` says what its jobs then do) or is gone, or the one-line refusal naming `file` when
/// the pid cannot be proven to be that executor.
pub fn cancel_executor(
    pid: u32,
    identity: Option<&ProcessIdentity>,
    file: &std::path::Path,
    asked: &str,
) -> Result<String, String> {
    match terminate_if_ours(pid, identity) {
        Standing::Ours => Ok(format!(
            "asked the local executor (pid {pid}) to stop; {asked}"
        )),
        Standing::Gone => Ok(format!(
            "the local executor (pid {pid}) is not running; nothing to cancel"
        )),
        Standing::NotOurs(why) => Err(format!("{}: {why}; nothing was signalled", file.display())),
    }
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Field 22 of `/proc/PID/stat`, counted after the command name (which may hold spaces and
/// parentheses, so it is skipped up to its last ')').
fn start_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields 3.. follow the name; the start time is field 22, the 20th of them.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_read_past_a_name_with_spaces_and_parentheses() {
        let stat =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(start_ticks(stat), Some(987_654));
        assert_eq!(start_ticks("garbage"), None);
    }

    #[test]
    fn this_process_is_ours_to_itself_only_through_a_child_check() {
        let me = ProcessIdentity::this_process().expect("/proc is there");
        assert_eq!(me.pid, std::process::id());
        assert!(me.started > 0 && !me.boot.is_empty() && !me.exe.is_empty());
        // Never this process, never pid 0 (its group) or 1.
        assert!(matches!(me.standing(), Standing::NotOurs(_)));
        for pid in [0, 1] {
            let s = standing(pid, None);
            assert!(
                matches!(s, Standing::NotOurs(ref w) if w.contains("never a valleys executor")),
                "{s:?}"
            );
        }
    }

    #[test]
    fn a_child_is_ours_while_it_runs_and_gone_after_and_a_stranger_is_not_ours() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let id = ProcessIdentity::of(pid).unwrap();
        assert_eq!(standing(pid, Some(&id)), Standing::Ours);
        // The same pid recorded with another start time or another executable: not ours.
        let later = ProcessIdentity {
            started: id.started + 1,
            ..id.clone()
        };
        assert!(
            matches!(standing(pid, Some(&later)), Standing::NotOurs(w) if w.contains("another process now"))
        );
        let other_exe = ProcessIdentity {
            exe: "/opt/valleys".into(),
            ..id.clone()
        };
        assert!(
            matches!(standing(pid, Some(&other_exe)), Standing::NotOurs(w) if w.contains("not /opt/valleys"))
        );
        // A file whose pid was edited away from its identity.
        assert!(matches!(standing(pid + 1, Some(&id)), Standing::NotOurs(_)));
        // No identity at all: alive, so not signalled.
        assert!(matches!(standing(pid, None), Standing::NotOurs(w) if w.contains("older valleys")));
        assert!(matches!(
            terminate_if_ours(pid, Some(&later)),
            Standing::NotOurs(_)
        ));
        assert!(
            child.try_wait().unwrap().is_none(),
            "a refused signal is not sent"
        );
        assert_eq!(terminate_if_ours(pid, Some(&id)), Standing::Ours);
        child.wait().unwrap();
        assert_eq!(standing(pid, Some(&id)), Standing::Gone);
        // Another boot: gone, whatever runs under that pid now.
        let old_boot = ProcessIdentity {
            boot: "00000000-0000-0000-0000-000000000000".into(),
            pid: 2,
            ..id
        };
        assert_eq!(old_boot.standing(), Standing::Gone);
    }
}
