//! Uploads that heal themselves, on a real mount (issue 11, "Build" item 2): the emulator is
//! stopped while files are written through the mount, and started again on the same port and
//! data directory. Every file reaches the bucket byte-exact with no `cosfuse tasks restart`;
//! meanwhile `cosfuse tasks` shows the uploads waiting, with their next attempt and last error.
//! An unmount during the outage does not hang: the uploads stay journaled and the next mount
//! uploads them.
//!
//! Files are created while the backend is up (creating a name asks COS whether it exists) and
//! written and closed during the outage. The tests of this file run one at a time (`SERIAL`):
//! a descriptor held by this process while another thread starts a program gets an extra FLUSH
//! (see `write_in_child` in common), i.e. an extra task.

mod common;
use common::*;
use std::fs::File;
use std::io::Write;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

const BUCKET: &str = "heal-1250000000";
/// Short backoff cap so a few seconds of outage see several attempts; multipart from 2 MiB.
const OPTS: &str = "retry_max_delay=0.5,part_size=1M,multipart_threshold=2M";

static SERIAL: Mutex<()> = Mutex::new(());

/// Small files and one multipart file.
fn files() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = (0..5u64)
        .map(|i| {
            (
                format!("f{i}.txt"),
                pattern(1000 + i as usize * 7919, 40 + i),
            )
        })
        .collect();
    v.push(("big.bin".into(), pattern(3 << 20, 99)));
    v
}

/// Creates every file (backend up), stops the emulator, then writes and closes them.
fn write_during_outage(emu: &mut Emulator, m: &Mount, files: &[(String, Vec<u8>)]) {
    let mut handles: Vec<File> = files
        .iter()
        .map(|(name, _)| File::create(m.p(name)).expect("create"))
        .collect();
    emu.kill();
    for (f, (name, data)) in handles.iter_mut().zip(files) {
        f.write_all(data)
            .unwrap_or_else(|e| panic!("write {name} during the outage: {e}"));
    }
    // Closing hands them to the upload queue; every attempt now fails (connection refused).
    // Each close of a small file waits a few seconds for its upload (the fs core's close_wait)
    // and the uploads cannot finish: close them all at once, not one after the other.
    std::thread::scope(|s| {
        for f in handles {
            s.spawn(move || drop(f));
        }
    });
}

/// `cosfuse tasks MNT`.
fn listing(m: &Mount) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cosfuse"))
        .arg("tasks")
        .arg(m.path())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// True when the bucket holds exactly `data` under `key` (one HEAD, then one GET).
fn in_bucket(emu: &Emulator, key: &str, data: &[u8]) -> bool {
    let h = emu.head(BUCKET, key);
    if h.status != 200 || h.header("content-length") != Some(&data.len().to_string()) {
        return false;
    }
    emu.get(BUCKET, key) == data
}

#[test]
fn uploads_written_during_an_outage_reach_the_bucket_when_it_returns() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    let files = files();
    write_during_outage(&mut emu, &m, &files);
    // The queue retries on its own: the tasks show as waiting, when they run next, and why.
    let mut seen = String::new();
    let shown = wait_until(Duration::from_secs(30), || {
        seen = listing(&m);
        seen.contains("waiting") && seen.contains("next attempt: ") && seen.contains("error: ")
    });
    assert!(shown, "no waiting task in `cosfuse tasks`:\n{seen}");
    emu.start_again(&[BUCKET], &[]);
    // No command: every file reaches the bucket byte-exact.
    for (name, data) in &files {
        assert!(
            wait_until(Duration::from_secs(60), || in_bucket(&emu, name, data)),
            "{name} did not reach the bucket after the outage; tasks:\n{}\nlog:\n{}",
            listing(&m),
            m.log_text()
        );
    }
    let log = m.log_text();
    assert!(log.contains("retrying in"), "{log}");
    assert!(
        !log.contains("failed, kept for retry"),
        "a task failed: {log}"
    );
    m.unmount();
}

#[test]
fn unmount_during_an_outage_keeps_the_uploads_for_the_next_mount() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, OPTS);
    let files = files();
    write_during_outage(&mut emu, &m, &files);
    let log_path = m.log.clone();
    // Returns (bounded: one more attempt per task, no waiting for the outage to end) and the
    // daemon exits; `unmount` asserts both.
    let cache = m.unmount();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        log.contains("uploaded at the next mount"),
        "no drain warning in the log:\n{log}"
    );
    // It returned while the backend was still away.
    assert!(std::net::TcpStream::connect(&emu.addr).is_err());
    emu.start_again(&[BUCKET], &[]);
    let m2 = Mount::with_cache(&emu, BUCKET, OPTS, cache);
    for (name, data) in &files {
        assert!(
            wait_until(Duration::from_secs(60), || in_bucket(&emu, name, data)),
            "{name} was not uploaded by the next mount; log:\n{}",
            m2.log_text()
        );
    }
    m2.unmount();
}

/// Offline write-back: with the emulator stopped, new files are created and written in a
/// directory the mount knows (one it created, and one it only listed), close returns, and the
/// files reach the bucket on their own once the emulator is back.
#[test]
fn files_created_while_the_backend_is_down_reach_it_when_it_returns() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut emu = Emulator::start(&[BUCKET], &[]);
    emu.put(BUCKET, "listed/existing", b"x");
    let m = Mount::new(&emu, BUCKET, OPTS);
    std::fs::create_dir(m.p("mine")).unwrap();
    sh(m.path(), "ls listed >/dev/null");
    emu.kill();
    let made: Vec<(String, Vec<u8>)> = (0..4u64)
        .map(|i| {
            let dir = if i % 2 == 0 { "mine" } else { "listed" };
            (format!("{dir}/off{i}"), pattern(5000 + i as usize, 70 + i))
        })
        .collect();
    for (name, data) in &made {
        write_in_child(&m.p(name), data);
        assert_eq!(
            &std::fs::read(m.p(name)).unwrap(),
            data,
            "{name} in the cache"
        );
    }
    emu.start_again(&[BUCKET], &[]);
    for (name, data) in &made {
        let ok = wait_until(Duration::from_secs(60), || {
            emu.try_get(BUCKET, name).as_ref() == Some(data)
        });
        assert!(ok, "{name} did not reach the bucket");
    }
}

/// `close_wait=0`: close returns once the data is queued in the cache, without waiting for
/// COS, so closes during an outage do not wait (the default waits up to 5 s per small file:
/// 30 files would take 150 s); the files read back from the cache, and a `kill -9` of the
/// daemon before any of them reached COS loses none: the next mount uploads them all.
#[test]
fn with_close_wait_0_closes_during_an_outage_return_at_once_and_a_crash_loses_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, &format!("{OPTS},close_wait=0"));
    // A directory this mount made: creating names in it asks COS nothing.
    std::fs::create_dir(m.p("nowait")).unwrap();
    emu.kill();
    let made: Vec<(String, Vec<u8>)> = (0..30u64)
        .map(|i| (format!("nowait/f{i}"), pattern(3000 + i as usize, 90 + i)))
        .collect();
    let started = std::time::Instant::now();
    for (name, data) in &made {
        write_in_child(&m.p(name), data);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "30 closes took {took:?}: close waited for COS"
    );
    for (name, data) in &made {
        assert_eq!(
            &std::fs::read(m.p(name)).unwrap(),
            data,
            "{name} in the cache"
        );
    }
    let tasks = listing(&m);
    assert!(tasks.contains("nowait/f29"), "not queued:\n{tasks}");
    let cache = m.kill9();
    emu.start_again(&[BUCKET], &[]);
    let m2 = Mount::with_cache(&emu, BUCKET, OPTS, cache);
    for (name, data) in &made {
        assert!(
            wait_until(Duration::from_secs(60), || in_bucket(&emu, name, data)),
            "{name} was lost after kill -9; log:\n{}",
            m2.log_text()
        );
    }
    m2.unmount();
}
