//! Real-mount tests with ordinary tools (issue 3 "Show it", first bullet): `cp -r` of a real
//! source tree and `diff -r`, `tar` in and out, `rsync -a` twice (the second transfers nothing),
//! `git` init/commit/fsck, and `sqlite3`, all on a `cosfuse` mount of the emulator.

mod common;
use common::*;
use std::path::PathBuf;

const BUCKET: &str = "tools-1250000000";

/// A real source tree with at least 300 files: the tokio crate's sources from the cargo registry
/// (always present after the build), else this repository's own tree plus generated files.
fn source_tree() -> PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let mut best: Option<PathBuf> = None;
    if let Ok(regs) = std::fs::read_dir(home.join("registry/src")) {
        for reg in regs.flatten() {
            if let Ok(crates) = std::fs::read_dir(reg.path()) {
                for c in crates.flatten() {
                    let name = c.file_name().to_string_lossy().to_string();
                    if name.starts_with("tokio-1.") {
                        best = Some(c.path());
                    }
                }
            }
        }
    }
    let tree = best.expect("tokio sources in the cargo registry");
    let n = sh(&tree, "find . -type f | wc -l")
        .trim()
        .parse::<usize>()
        .unwrap();
    assert!(n >= 300, "source tree has only {n} files");
    tree
}

#[test]
fn cp_r_then_diff_r_and_tar_round_trip() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    let src = source_tree();
    sh(m.path(), &format!("cp -r {} src", src.display()));
    sh(m.path(), &format!("diff -r {} src", src.display()));
    // tar out of the mount, and tar into it.
    let out = tempfile::tempdir().unwrap();
    sh(
        m.path(),
        &format!("tar cf {}/t.tar src", out.path().display()),
    );
    sh(
        m.path(),
        &format!(
            "mkdir unpacked && tar xf {}/t.tar -C unpacked",
            out.path().display()
        ),
    );
    sh(m.path(), &format!("diff -r {} unpacked/src", src.display()));
    // What the mount shows is what COS has: a fresh mount sees the same tree.
    m.unmount();
    let m2 = Mount::new(&emu, BUCKET, "");
    sh(
        m2.path(),
        &format!(
            "diff -r {} src && diff -r {} unpacked/src",
            src.display(),
            src.display()
        ),
    );
}

#[test]
fn rsync_twice_second_run_transfers_nothing() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    let src = source_tree();
    sh(m.path(), &format!("rsync -a {}/ dst/", src.display()));
    sh(m.path(), &format!("diff -r {} dst", src.display()));
    let before = emu.stats();
    let stats = sh(
        m.path(),
        &format!("rsync -a --stats {}/ dst/", src.display()),
    );
    let after = emu.stats();
    let line = stats
        .lines()
        .find(|l| l.starts_with("Number of regular files transferred"))
        .unwrap_or_else(|| panic!("no transfer line in {stats}"));
    assert!(
        line.trim_end().ends_with(": 0"),
        "second rsync transferred files: {line}"
    );
    assert_eq!(
        delta(&before, &after, "PutObject"),
        0,
        "second rsync uploaded"
    );
    // Also across a remount: sizes and mtimes survive in COS metadata.
    m.unmount();
    let m2 = Mount::new(&emu, BUCKET, "");
    let stats = sh(
        m2.path(),
        &format!("rsync -a --stats {}/ dst/", src.display()),
    );
    let line = stats
        .lines()
        .find(|l| l.starts_with("Number of regular files transferred"))
        .unwrap();
    assert!(
        line.trim_end().ends_with(": 0"),
        "rsync after remount transferred files: {line}"
    );
}

#[test]
fn git_init_commit_fsck_inside_the_mount() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    sh(
        m.path(),
        "mkdir repo && cd repo && git init -q && git config user.email t@t && git config user.name t \
         && printf 'hello\\n' > a.txt && mkdir d && printf 'x\\n' > d/b.txt && git add -A \
         && git commit -qm first && printf 'more\\n' >> a.txt && git commit -qam second \
         && git fsck --full && git log --oneline | wc -l | grep -qx 2",
    );
    let log = sh(&m.p("repo"), "git log --format=%s");
    assert_eq!(log, "second\nfirst\n");
}

#[test]
fn sqlite3_create_insert_select() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    sh(
        m.path(),
        "sqlite3 db.sqlite 'create table t(a integer, b text);' \
         && for i in $(seq 1 50); do echo \"insert into t values($i, 'row $i');\"; done | sqlite3 db.sqlite",
    );
    let out = sh(
        m.path(),
        "sqlite3 db.sqlite 'select count(*), sum(a) from t; pragma integrity_check;'",
    );
    assert_eq!(out, "50|1275\nok\n");
    m.unmount();
    let m2 = Mount::new(&emu, BUCKET, "");
    let out = sh(
        m2.path(),
        "sqlite3 db.sqlite 'select b from t where a = 7;'",
    );
    assert_eq!(out, "row 7\n");
}
