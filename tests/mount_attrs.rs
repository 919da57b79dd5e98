//! Listings never invent a type or a mode: after an unmount and a mount with an empty cache,
//! and again with the kept cache, `ls -l` first and then `stat`/`readlink` show symlinks as
//! symlinks with their targets, and modes, owners and mtimes as chmod/chown/touch set them;
//! `cp -a` and `rsync -a` out of the mount reproduce them; with `allow_other`, another user
//! cannot read a 0600 file. Request counts: cold = list pages + at most one HEAD per entry,
//! warm (kept cache) = list pages and no HEAD.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const BUCKET: &str = "attrs-1250000000";

/// What `stat` must show for the tree the test makes.
fn check_tree(root: &Path, when: &str) {
    let l1 = fs::symlink_metadata(root.join("t/l1")).unwrap();
    assert!(l1.file_type().is_symlink(), "{when}: l1 is a symlink");
    assert_eq!(
        fs::read_link(root.join("t/l1")).unwrap().to_str(),
        Some("target-a"),
        "{when}: readlink"
    );
    let f = fs::symlink_metadata(root.join("t/f")).unwrap();
    assert!(f.file_type().is_file(), "{when}: f is a file");
    assert_eq!(f.mode() & 0o7777, 0o600, "{when}: f's mode");
    assert_eq!((f.uid(), f.gid()), (1234, 5678), "{when}: f's owner");
    assert_eq!(f.mtime(), 1_500_000_000, "{when}: f's mtime");
    let g = fs::symlink_metadata(root.join("t/g")).unwrap();
    assert_eq!(g.mode() & 0o7777, 0o751, "{when}: g's mode");
    let d = fs::symlink_metadata(root.join("t/d")).unwrap();
    assert!(d.is_dir(), "{when}: d is a directory");
    assert_eq!(d.mode() & 0o7777, 0o710, "{when}: d's mode");
}

#[test]
fn symlinks_modes_owners_and_mtimes_survive_remounts_with_empty_and_kept_cache() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "allow_other");
    sh(
        m.path(),
        "mkdir t && cd t && ln -s target-a l1 && echo x > f && chmod 600 f && chown 1234:5678 f \
         && touch -m -d @1500000000 f && echo y > g && chmod 751 g && mkdir d && chmod 710 d \
         && echo z > pub && chmod 644 pub",
    );
    check_tree(m.path(), "same mount");
    let kept = m.unmount();

    for (label, cache) in [
        ("empty cache", tempfile::tempdir().unwrap().keep()),
        ("kept cache", kept),
    ] {
        let m = Mount::with_cache(&emu, BUCKET, "allow_other", cache);
        // The lookup of the directory itself is not counted against its listing.
        fs::metadata(m.p("t")).unwrap();
        let before = emu.stats();
        let ls = sh(m.path(), "ls -l t");
        let after = emu.stats();
        let line = ls.lines().find(|l| l.ends_with("l1 -> target-a"));
        assert!(line.is_some_and(|l| l.starts_with('l')), "{label}: {ls}");
        assert!(
            ls.lines()
                .any(|l| l.starts_with("-rw------- ") && l.ends_with(" f")),
            "{label}: {ls}"
        );
        let heads = delta(&before, &after, "HeadObject");
        let pages = delta(&before, &after, "GetBucket");
        if label == "kept cache" {
            assert_eq!(heads, 0, "{label}: no HEAD with the kept cache");
        } else {
            assert!(heads <= 6, "{label}: {heads} HEADs for 6 entries");
        }
        assert!(pages <= 3, "{label}: {pages} list pages");
        check_tree(m.path(), label);

        // Out of the mount with cp -a and rsync -a.
        let out = tempfile::tempdir().unwrap();
        sh(
            m.path(),
            &format!(
                "cp -a t {o}/cp && rsync -a t/ {o}/rs/",
                o = out.path().display()
            ),
        );
        for copy in ["cp", "rs"] {
            let c = out.path().join(copy);
            assert_eq!(
                fs::read_link(c.join("l1")).unwrap().to_str(),
                Some("target-a"),
                "{label} {copy}"
            );
            let f = fs::metadata(c.join("f")).unwrap();
            assert_eq!(f.permissions().mode() & 0o7777, 0o600, "{label} {copy}");
            assert_eq!(f.mtime(), 1_500_000_000, "{label} {copy}");
            assert_eq!(
                fs::metadata(c.join("d")).unwrap().permissions().mode() & 0o7777,
                0o710
            );
        }

        // Another user: the kernel enforces the modes (allow_other + default_permissions).
        let denied = std::process::Command::new("runuser")
            .args(["-u", "nobody", "--", "cat"])
            .arg(m.p("t/f"))
            .output()
            .unwrap();
        assert!(!denied.status.success(), "{label}: nobody read a 0600 file");
        let allowed = std::process::Command::new("runuser")
            .args(["-u", "nobody", "--", "cat"])
            .arg(m.p("t/pub"))
            .output()
            .unwrap();
        assert_eq!(allowed.stdout, b"z\n", "{label}: nobody reads a 0644 file");
        m.unmount();
    }
}

#[test]
fn objects_without_metadata_keep_the_documented_defaults() {
    let emu = Emulator::start(&[BUCKET], &[]);
    emu.put(BUCKET, "plain/file", b"abc");
    emu.put(BUCKET, "plain/sub/inner", b"x");
    let m = Mount::new(&emu, BUCKET, "");
    let ls = sh(m.path(), "ls -l plain");
    assert!(ls.lines().any(|l| l.starts_with("-rw-r--r-- ")), "{ls}");
    assert!(ls.lines().any(|l| l.starts_with("drwxr-xr-x ")), "{ls}");
    let cache = m.unmount();
    // The defaults are cached as facts: the next listing asks nothing.
    let m = Mount::with_cache(&emu, BUCKET, "", cache);
    fs::metadata(m.p("plain")).unwrap();
    let before = emu.stats();
    sh(m.path(), "ls -l plain");
    assert_eq!(delta(&before, &emu.stats(), "HeadObject"), 0);
}

#[test]
fn stats_in_bulk_after_a_remount_cost_a_listing_not_a_head_each() {
    // `stat` of every name of a directory, after a remount with the kept cache and no
    // listing first (a build tool, `find`, rsync's receiver): after a few cold look-ups one
    // listing answers the rest, with the modes known for their ETags, and names it does not
    // show are absent without a request. Another client's new name still shows.
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::create_dir(m.p("many")).unwrap();
    for i in 0..60 {
        let p = m.p(&format!("many/f{i}"));
        fs::write(&p, format!("{i}")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600 + (i % 8) as u32)).unwrap();
    }
    let cache = m.unmount();
    let m = Mount::with_cache(&emu, BUCKET, "", cache);
    fs::metadata(m.p("many")).unwrap();
    let before = emu.stats();
    for i in 0..60 {
        let md = fs::metadata(m.p(&format!("many/f{i}"))).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o600 + (i % 8) as u32, "f{i}'s mode");
        assert_eq!(md.len(), format!("{i}").len() as u64, "f{i}'s size");
        let missing = fs::metadata(m.p(&format!("many/g{i}")));
        assert_eq!(missing.unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }
    let after = emu.stats();
    let heads = delta(&before, &after, "HeadObject");
    let pages = delta(&before, &after, "GetBucket");
    // Only the look-ups before the listing is taken ask one by one (HEAD + LIST each).
    assert!(heads <= 4, "{heads} HEADs for 120 look-ups");
    assert!(pages <= 12, "{pages} listings for 120 look-ups");

    emu.put(BUCKET, "many/new", b"n");
    let start = std::time::Instant::now();
    while fs::metadata(m.p("many/new")).is_err() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(4),
            "another client's new name stays hidden"
        );
        std::thread::yield_now();
    }
}
