//! The file-state repros of the "one inode, one truth" redesign, on real mounts: a renamed empty
//! file keeps its new name (in the mount, in COS and after a remount), two appending shells
//! and eight region writers lose nothing, names closed and at once renamed or unlinked end
//! right in COS, concurrent first reads of one object all return, and `rsync`/`git`
//! temp-file-then-rename workflows leave no temp files.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::FileExt;
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

const BUCKET: &str = "state-1250000000";

/// Keys in the bucket under `prefix` (one listing page is enough for these tests).
fn keys(emu: &Emulator, prefix: &str) -> Vec<String> {
    let r = emu.request("GET", BUCKET, "", &[("prefix", prefix)], &[], b"");
    let body = String::from_utf8_lossy(&r.body).to_string();
    body.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_renamed_empty_file_keeps_its_new_name_in_cos_and_after_remount() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::create_dir(m.p("d")).unwrap();
    sh(
        m.path(),
        "for i in $(seq 20); do : > d/.tmp$i && mv d/.tmp$i d/empty$i; done",
    );
    let want: Vec<String> = {
        let mut v: Vec<String> = (1..=20).map(|i| format!("empty{i}")).collect();
        v.sort();
        v
    };
    assert_eq!(names(&m.p("d")), want, "the mount lists the new names only");
    let cache = m.unmount();
    let mut got = keys(&emu, "d/");
    got.sort();
    let mut want_keys: Vec<String> = want.iter().map(|n| format!("d/{n}")).collect();
    want_keys.push("d/".into());
    want_keys.sort();
    assert_eq!(got, want_keys, "COS holds the new names only");
    let m = Mount::with_cache(&emu, BUCKET, "", cache);
    assert_eq!(names(&m.p("d")), want, "after a remount");
}

#[test]
fn two_shells_appending_to_one_file_lose_no_line() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    sh(
        m.path(),
        "(for i in $(seq 200); do echo A$i >> log; done) & \
         (for i in $(seq 200); do echo B$i >> log; done) & wait",
    );
    let check = |text: String, when: &str| {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 400, "{when}: lines");
        for p in ["A", "B"] {
            let mine: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with(p)).collect();
            let want: Vec<String> = (1..=200).map(|i| format!("{p}{i}")).collect();
            assert_eq!(mine, want, "{when}: {p}'s lines in order");
        }
    };
    check(fs::read_to_string(m.p("log")).unwrap(), "in the mount");
    m.unmount();
    check(
        String::from_utf8(emu.get(BUCKET, "log")).unwrap(),
        "in COS after unmount",
    );
}

#[test]
fn n_processes_appending_with_o_append_and_eight_region_writers_lose_nothing() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    // Four processes, each appending 100 fixed-size records through its own descriptor.
    sh(
        m.path(),
        "for p in 1 2 3 4; do (exec 3>>rec; for i in $(seq 100); do printf '%s-%03d\\n' $p $i >&3; done) & done; wait",
    );
    let text = fs::read_to_string(m.p("rec")).unwrap();
    assert_eq!(text.len(), 400 * 6, "every record's bytes");
    for p in 1..=4 {
        for i in 1..=100 {
            assert!(text.contains(&format!("{p}-{i:03}\n")), "record {p}-{i}");
        }
    }
    // Eight writers, each its own 1 MiB region of one file, all open at once.
    const MIB: usize = 1 << 20;
    fs::write(m.p("regions"), vec![0u8; 8 * MIB]).unwrap();
    let start = Arc::new(Barrier::new(8));
    let path = m.p("regions");
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let (start, path) = (start.clone(), path.clone());
            std::thread::spawn(move || {
                let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
                start.wait();
                f.write_all_at(&pattern(MIB, k as u64 + 1), (k * MIB) as u64)
                    .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let want: Vec<u8> = (0..8).flat_map(|k| pattern(MIB, k as u64 + 1)).collect();
    let got = fs::read(m.p("regions")).unwrap();
    assert_eq!(difference(&got, &want), None, "in the mount");
    m.unmount();
    assert_eq!(
        difference(&emu.get(BUCKET, "regions"), &want),
        None,
        "in COS"
    );
}

#[test]
fn names_closed_then_at_once_renamed_or_unlinked_end_right_in_cos() {
    let emu = Emulator::start(&[BUCKET], &[]);
    for i in 0..10 {
        emu.put(BUCKET, &format!("t/old{i}"), b"old content");
    }
    let m = Mount::new(&emu, BUCKET, "");
    fs::create_dir_all(m.p("r")).unwrap();
    fs::create_dir_all(m.p("u")).unwrap();
    for i in 0..20 {
        fs::File::create(m.p(&format!("r/a{i}"))).unwrap();
        fs::rename(m.p(&format!("r/a{i}")), m.p(&format!("r/b{i}"))).unwrap();
        fs::write(m.p(&format!("u/x{i}")), b"gone").unwrap();
        fs::remove_file(m.p(&format!("u/x{i}"))).unwrap();
    }
    for i in 0..10 {
        // open(O_TRUNC) of an existing object, closed, then renamed.
        fs::File::create(m.p(&format!("t/old{i}"))).unwrap();
        fs::rename(m.p(&format!("t/old{i}")), m.p(&format!("t/new{i}"))).unwrap();
    }
    m.unmount();
    let mut r = keys(&emu, "r/");
    r.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("r/b{i}")).collect();
    want.push("r/".into());
    want.sort();
    assert_eq!(r, want);
    assert_eq!(keys(&emu, "u/"), vec!["u/".to_string()]);
    let mut t = keys(&emu, "t/");
    t.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("t/new{i}")).collect();
    want.sort();
    assert_eq!(t, want);
    for i in 0..10 {
        assert!(
            emu.get(BUCKET, &format!("t/new{i}")).is_empty(),
            "truncated"
        );
    }
}

#[test]
fn concurrent_first_reads_of_one_object_all_return() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let data = pattern(16 << 20, 7);
    emu.put(BUCKET, "big", &data);
    let m = Mount::new(&emu, BUCKET, "");
    let files: Vec<fs::File> = (0..4)
        .map(|_| fs::File::open(m.p("big")).unwrap())
        .collect();
    let start = Arc::new(Barrier::new(4));
    let (tx, rx) = mpsc::channel();
    for (k, f) in files.into_iter().enumerate() {
        let (start, tx) = (start.clone(), tx.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            start.wait();
            let r = f.read_exact_at(&mut buf, (k as u64) * (4 << 20));
            let _ = tx.send((k, r.map(|_| buf)));
        });
    }
    for _ in 0..4 {
        let (k, r) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a first read never returned (deadlock)");
        let got = r.unwrap();
        let off = k * (4 << 20);
        assert_eq!(
            difference(&got, &data[off..off + (1 << 20)]),
            None,
            "reader {k}"
        );
    }
}

#[test]
fn rsync_in_and_out_twice_leaves_no_temp_files() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    let src = tempfile::tempdir().unwrap();
    for i in 0..30 {
        let d = src.path().join(format!("d{}", i % 3));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("f{i}")), pattern(100 + i * 37, i as u64)).unwrap();
    }
    std::os::unix::fs::symlink("d0/f0", src.path().join("link")).unwrap();
    let out = tempfile::tempdir().unwrap();
    for pass in 0..2 {
        let stats = sh(
            m.path(),
            &format!("rsync -a --stats {}/ in/", src.path().display()),
        );
        let n = stats
            .lines()
            .find(|l| l.starts_with("Number of regular files transferred"))
            .unwrap_or_default()
            .to_string();
        if pass == 1 {
            assert!(n.trim_end().ends_with(": 0"), "second pass: {n}");
        }
        sh(m.path(), &format!("rsync -a in/ {}/", out.path().display()));
    }
    sh(
        m.path(),
        &format!("diff -r {} {}", src.path().display(), out.path().display()),
    );
    let listed = sh(m.path(), "find in -name '.*' | wc -l");
    assert_eq!(listed.trim(), "0", "temp files in the mount");
    m.unmount();
    assert!(
        keys(&emu, "in/").iter().all(|k| !k.contains("/.")),
        "temp files in COS: {:?}",
        keys(&emu, "in/")
    );
}

#[test]
fn git_init_add_commit_mv_gc_fsck_clone() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    sh(
        m.path(),
        "mkdir repo && cd repo && git init -q && git config user.email t@t && git config user.name t \
         && for i in 1 2 3; do printf 'line %s\\n' $i > f$i.txt; done && git add -A \
         && git commit -qm one && git mv f1.txt g1.txt && git commit -qm two \
         && printf 'x\\n' >> f2.txt && git commit -qam three && git gc -q && git fsck --full",
    );
    let out = tempfile::tempdir().unwrap();
    sh(
        out.path(),
        &format!("git clone -q {} clone", m.p("repo").display()),
    );
    let log = sh(&out.path().join("clone"), "git log --format=%s");
    assert_eq!(log, "three\ntwo\none\n");
    assert_eq!(
        fs::read_to_string(out.path().join("clone/f2.txt")).unwrap(),
        "line 2\nx\n"
    );
    assert!(out.path().join("clone/g1.txt").exists());
    // After a remount the repository is still whole.
    let cache = m.unmount();
    let m = Mount::with_cache(&emu, BUCKET, "", cache);
    sh(
        &m.p("repo"),
        "git fsck --full && git status --porcelain | wc -l | grep -qx 0",
    );
}

#[test]
fn small_files_in_a_directory_this_mount_made_cost_one_put_each() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::create_dir(m.p("new")).unwrap();
    let before = emu.stats();
    for i in 0..20 {
        write_in_child(&m.p(&format!("new/f{i}")), format!("{i}").as_bytes());
    }
    let after = emu.stats();
    assert_eq!(delta(&before, &after, "PutObject"), 20, "one PUT per file");
    assert_eq!(
        delta(&before, &after, "HeadObject"),
        0,
        "no HEAD before create"
    );
    assert_eq!(
        delta(&before, &after, "GetBucket"),
        0,
        "no LIST before create"
    );
    assert_eq!(fs::read_to_string(m.p("new/f7")).unwrap(), "7");
}
