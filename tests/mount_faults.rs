//! Faults on a real mount: an endpoint that accepts connections and never answers (every call
//! returns within the deadline, with EIO), and `kill -9` right after `rm -r` and after `mv` of a
//! directory (the next mount neither resurrects deleted files nor loses a name).

mod common;
use common::*;
use std::fs;
use std::sync::mpsc;
use std::time::Duration;

const BUCKET: &str = "faults-1250000000";

/// Runs `f` on a thread; it must return within `limit` (a hang fails the test, not hangs it).
fn returns_within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what} did not return within {limit:?}"))
}

#[test]
fn every_call_returns_within_the_deadline_against_an_endpoint_that_never_answers() {
    let mut emu = Emulator::start(&[BUCKET], &[]);
    emu.put(BUCKET, "known/file", b"data");
    let m = Mount::new(&emu, BUCKET, "op_timeout=2");
    sh(m.path(), "ls known >/dev/null");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(m.p("known/new"))
        .unwrap();
    // The backend now takes 70 s for every request.
    emu.kill();
    emu.start_again(&[BUCKET], &["--latency-ms", "70000"]);
    let limit = Duration::from_secs(40);
    let root = m.path().to_path_buf();
    let r = root.clone();
    let ls = returns_within("ls", limit, move || {
        fs::read_dir(r.join("elsewhere")).map(|_| ())
    });
    assert!(ls.is_err(), "ls of an unlisted directory cannot succeed");
    let r = root.clone();
    let st = returns_within("stat", limit, move || fs::metadata(r.join("unknown")));
    assert_eq!(st.unwrap_err().raw_os_error(), Some(libc::EIO));
    let r = root.clone();
    let cat = returns_within("cat", limit, move || fs::read(r.join("other/file")));
    assert!(cat.is_err());
    // create in a directory the mount has listed: goes to the cache, returns.
    let r = root.clone();
    let created = returns_within("create", limit, move || {
        fs::write(r.join("known/made-offline"), b"later")
    });
    assert!(
        created.is_ok(),
        "create while COS does not answer: {created:?}"
    );
    // fsync of data written now: EIO within the deadline, the data kept for later.
    use std::io::Write;
    f.write_all(b"kept").unwrap();
    let fsync = returns_within("fsync", limit, move || f.sync_all());
    assert_eq!(fsync.unwrap_err().raw_os_error(), Some(libc::EIO));
    assert!(
        m.log_text().contains("no answer within"),
        "a log line names the operation"
    );
}

#[test]
fn kill_9_right_after_rm_r_or_mv_of_a_directory_neither_resurrects_nor_loses() {
    let emu = Emulator::start(&[BUCKET], &[]);
    for i in 0..40 {
        emu.put(BUCKET, &format!("gone/sub{}/f{i}", i % 4), b"x");
        emu.put(BUCKET, &format!("d1/f{i}"), format!("{i}").as_bytes());
    }
    let m = Mount::new(&emu, BUCKET, "");
    sh(m.path(), "rm -r gone && mv d1 d2");
    let cache = m.kill9();
    let m = Mount::with_cache(&emu, BUCKET, "", cache);
    assert!(!m.p("gone").exists(), "rm -r came back after kill -9");
    assert!(!m.p("d1").exists(), "the old name of the moved directory");
    for i in 0..40 {
        assert_eq!(
            fs::read_to_string(m.p(&format!("d2/f{i}"))).unwrap(),
            i.to_string(),
            "d2/f{i} after kill -9"
        );
    }
    m.unmount();
    let r = emu.request("GET", BUCKET, "", &[("prefix", "gone/")], &[], b"");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("<Key>"),
        "keys left under gone/"
    );
    let r = emu.request("GET", BUCKET, "", &[("prefix", "d1/")], &[], b"");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("<Key>"),
        "keys left under d1/"
    );
}

#[test]
fn a_file_open_at_a_crash_is_recovered_under_its_name() {
    use std::io::Write;
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::create_dir(m.p("dir")).unwrap();
    let mut f = fs::File::create(m.p("dir/open file")).unwrap();
    f.write_all(b"written, never closed").unwrap();
    let cache = m.kill9();
    drop(f);
    let m = Mount::with_cache(&emu, BUCKET, "", cache.clone());
    let kept: Vec<String> = fs::read_dir(cache.join("recovered"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let named = kept
        .iter()
        .find(|n| n.starts_with("unclosed-dir%2Fopen file"))
        .unwrap_or_else(|| panic!("recovered files: {kept:?}"));
    assert_eq!(
        fs::read(cache.join("recovered").join(named)).unwrap(),
        b"written, never closed"
    );
    m.unmount();
}
