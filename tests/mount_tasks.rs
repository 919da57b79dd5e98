//! The upload queue made visible (issue 4): with injected latency, `cosfuse tasks` lists a
//! running upload whose progress rises; pause holds it, restart finishes it, and cancel keeps
//! the local copy where the message says. A close of a descriptor inherited by a started
//! program (a FLUSH in the middle of writing) makes a task of its own and loses nothing.
//!
//! Files are written with `write_in_child`: the tests of this file run in parallel threads of
//! one process and start programs, and a descriptor held by this process while another thread
//! starts one gets an extra FLUSH (see `write_in_child`), i.e. a second task of the key.

mod common;
use common::*;
use std::fs;
use std::process::Command;
use std::time::Duration;

const BUCKET: &str = "tasks-1250000000";
const OPTS: &str = "part_size=1M,multipart_threshold=1M,parallel=1";

/// The output of `cosfuse tasks MNT`.
fn listing(m: &Mount) -> String {
    cosfuse_tool(&["tasks"], m)
}

/// Rows of `cosfuse tasks MNT`: (id, state, percent, key).
fn tasks(m: &Mount) -> Vec<(u64, String, f64, String)> {
    rows(&listing(m))
}

/// Parses the rows of a `cosfuse tasks` listing.
fn rows(text: &str) -> Vec<(u64, String, f64, String)> {
    text.lines()
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

/// Every task of `key`, oldest first: (id, state, percent).
fn tasks_for(m: &Mount, key: &str) -> Vec<(u64, String, f64)> {
    tasks(m)
        .into_iter()
        .filter(|t| t.3 == key)
        .map(|t| (t.0, t.1, t.2))
        .collect()
}

/// The task of `key`; fails when there are several (the test wrote the file once, so one
/// close, one task: a second one would make "the task" ambiguous).
fn task_for(m: &Mount, key: &str) -> Option<(u64, String, f64)> {
    let text = listing(m);
    let mut found: Vec<_> = rows(&text).into_iter().filter(|t| t.3 == key).collect();
    assert!(found.len() <= 1, "more than one task of {key}:\n{text}");
    found.pop().map(|t| (t.0, t.1, t.2))
}

#[test]
fn progress_rises_pause_holds_restart_finishes() {
    let emu = Emulator::start(&[BUCKET], &["--latency-ms", "150"]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    let data = pattern(24 << 20, 1);
    write_in_child(&m.p("slow.bin"), &data);
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
    let got = emu.get(BUCKET, "slow.bin");
    if let Some(d) = difference(&got, &data) {
        panic!("slow.bin in COS: {d}\n{}", listing(&m));
    }
}

#[test]
fn cancel_keeps_the_local_copy_where_it_says() {
    let emu = Emulator::start(&[BUCKET], &["--latency-ms", "150"]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    let data = pattern(16 << 20, 2);
    write_in_child(&m.p("doomed.bin"), &data);
    let mut id = None;
    assert!(wait_until(Duration::from_secs(60), || {
        id = task_for(&m, "doomed.bin").map(|t| t.0);
        id.is_some()
    }));
    let before = listing(&m);
    let msg = action(&m, "cancel", id.unwrap());
    let path = kept_path(&msg);
    let got = fs::read(&path).unwrap();
    if let Some(d) = difference(&got, &data) {
        panic!(
            "local copy at {path} differs: {d}\ntasks before the cancel:\n{before}\n\
             daemon log:\n{}",
            m.log_text()
        );
    }
    assert!(task_for(&m, "doomed.bin").is_none_or(|t| t.1 != "running" && t.1 != "queued"));
}

/// The path in the message of `cosfuse tasks MNT cancel ID`.
fn kept_path(msg: &str) -> String {
    msg.split_whitespace()
        .find(|w| w.starts_with('/'))
        .unwrap_or_else(|| panic!("no path in {msg:?}"))
        .trim_end_matches(['.', ',', ')'])
        .to_string()
}

/// What made `cancel_keeps_the_local_copy_where_it_says` flaky, on purpose: a program that
/// inherited the open file (here: a shell gives its descriptor to two `dd`s in turn) closes its
/// copy when it ends, a FLUSH in the middle of writing. That close hands the first part to the
/// queue as a task of its own; the next close makes a second task with everything. Cancelling
/// the first keeps exactly what it held, and the second still brings the whole file to COS:
/// nothing written is lost. (Done in a shell, not with a descriptor of this process, so the
/// other tests' programs cannot add closes of their own.)
#[test]
fn a_flush_while_writing_makes_an_early_task_and_loses_nothing() {
    let emu = Emulator::start(&[BUCKET], &["--latency-ms", "150"]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    let data = pattern(16 << 20, 3);
    // Above close_wait_max_size (8 MiB): the early close does not wait for its upload, so that
    // upload (12 parts, 150 ms each at least) is still under way when the test cancels it.
    let early = 12 << 20;
    let src = tempfile::NamedTempFile::new().unwrap();
    fs::write(src.path(), &data).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            r#"exec 3>"$1" && dd if="$2" bs=1M count=12 status=none >&3 &&
               dd if="$2" bs=1M skip=12 status=none >&3"#,
        )
        .arg("sh")
        .arg(m.p("forked.bin"))
        .arg(src.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = listing(&m);
    let ids: Vec<u64> = rows(&text)
        .into_iter()
        .filter(|t| t.3 == "forked.bin")
        .map(|t| t.0)
        .collect();
    assert_eq!(ids.len(), 2, "one task per close expected:\n{text}");
    let path = kept_path(&action(&m, "cancel", ids[0]));
    let got = fs::read(&path).unwrap();
    if let Some(d) = difference(&got, &data[..early]) {
        panic!("early task's copy at {path}: {d}\n{text}");
    }
    assert!(
        wait_until(Duration::from_secs(120), || tasks_for(&m, "forked.bin")
            .iter()
            .all(|t| t.1 == "done")),
        "the final task did not finish:\n{}",
        listing(&m)
    );
    let got = emu.get(BUCKET, "forked.bin");
    if let Some(d) = difference(&got, &data) {
        panic!("forked.bin in COS: {d}\n{}", listing(&m));
    }
}
