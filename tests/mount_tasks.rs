//! The upload queue made visible (issue 4): with injected latency, `cosfuse tasks` lists a
//! running upload whose progress rises; pause holds it, restart finishes it, and cancel keeps
//! the local copy where the message says.

mod common;
use common::*;
use std::fs;
use std::process::Command;
use std::time::Duration;

const BUCKET: &str = "tasks-1250000000";
const OPTS: &str = "part_size=1M,multipart_threshold=1M,parallel=1";

/// Rows of `cosfuse tasks MNT`: (id, state, percent, key).
fn tasks(m: &Mount) -> Vec<(u64, String, f64, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_cosfuse"))
        .arg("tasks")
        .arg(m.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cosfuse tasks: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let id = cols.first()?.parse().ok()?;
            let pct = cols.get(2)?.trim_end_matches('%').parse().ok()?;
            Some((id, cols[1].to_string(), pct, cols.last()?.to_string()))
        })
        .collect()
}

fn action(m: &Mount, verb: &str, id: u64) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cosfuse"))
        .arg("tasks")
        .arg(m.path())
        .arg(verb)
        .arg(id.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tasks {verb}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn task_for(m: &Mount, key: &str) -> Option<(u64, String, f64)> {
    tasks(m)
        .into_iter()
        .find(|t| t.3 == key)
        .map(|t| (t.0, t.1, t.2))
}

#[test]
fn progress_rises_pause_holds_restart_finishes() {
    let emu = Emulator::start(&[BUCKET], &["--latency-ms", "150"]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    let data = pattern(24 << 20, 1);
    fs::write(m.p("slow.bin"), &data).unwrap();
    let mut first = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            first = task_for(&m, "slow.bin").filter(|t| t.1 == "running" && t.2 > 0.0);
            first.is_some()
        }),
        "no running task with progress"
    );
    let (id, _, p0) = first.unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || task_for(&m, "slow.bin")
            .is_some_and(|t| t.2 > p0)),
        "progress did not rise"
    );
    action(&m, "pause", id);
    assert!(wait_until(Duration::from_secs(30), || task_for(
        &m, "slow.bin"
    )
    .is_some_and(|t| t.1 == "paused")));
    // Held: the object does not appear in COS while paused, and progress stays put.
    let held = task_for(&m, "slow.bin").unwrap().2;
    assert_eq!(emu.head(BUCKET, "slow.bin").status, 404);
    assert_eq!(task_for(&m, "slow.bin").unwrap().2, held);
    action(&m, "restart", id);
    assert!(
        wait_until(Duration::from_secs(120), || emu
            .head(BUCKET, "slow.bin")
            .status
            == 200),
        "restart did not finish"
    );
    assert!(emu.get(BUCKET, "slow.bin") == data);
}

#[test]
fn cancel_keeps_the_local_copy_where_it_says() {
    let emu = Emulator::start(&[BUCKET], &["--latency-ms", "150"]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    let data = pattern(16 << 20, 2);
    fs::write(m.p("doomed.bin"), &data).unwrap();
    let mut id = None;
    assert!(wait_until(Duration::from_secs(60), || {
        id = task_for(&m, "doomed.bin").map(|t| t.0);
        id.is_some()
    }));
    let msg = action(&m, "cancel", id.unwrap());
    let path = msg
        .split_whitespace()
        .find(|w| w.starts_with('/'))
        .unwrap_or_else(|| panic!("no path in {msg:?}"))
        .trim_end_matches(['.', ',', ')'])
        .to_string();
    assert!(
        fs::read(&path).unwrap() == data,
        "local copy at {path} differs"
    );
    assert!(task_for(&m, "doomed.bin").is_none_or(|t| t.1 != "running" && t.1 != "queued"));
}
