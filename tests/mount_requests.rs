//! Requests per small-file operation on a real mount, counted at the emulator's `/-/stats`:
//! a create in a directory this mount listed (or made) is one PUT and nothing else; `touch`
//! and `chmod` of an existing object cost a HEAD and a copy in place, with no ACL read when
//! the object's ACL is known (this mount wrote the file or made the directory); a small file closed while COS does not answer survives a
//! `kill -9` of the daemon right after its close returned.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

const BUCKET: &str = "requests-1250000000";

/// Every counter that moved between two snapshots.
fn moved(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> std::collections::BTreeMap<String, u64> {
    after
        .keys()
        .map(|k| (k.clone(), delta(before, after, k)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn a_create_in_a_listed_directory_is_one_put() {
    let emu = Emulator::start(&[BUCKET], &[]);
    emu.put(BUCKET, "dir/old", b"old");
    // A listing kept longer than the test takes: the assertion does not depend on speed.
    let m = Mount::new(&emu, BUCKET, "list_ttl=600");
    assert_eq!(sh(m.path(), "ls dir"), "old\n");
    let before = emu.stats();
    for i in 0..10 {
        write_in_child(&m.p(&format!("dir/new{i}")), format!("{i}").as_bytes());
    }
    let after = emu.stats();
    let ops = moved(&before, &after);
    assert_eq!(ops.get("PutObject"), Some(&10), "one PUT per file: {ops:?}");
    assert_eq!(ops.len(), 1, "nothing but PUTs: {ops:?}");
    assert_eq!(
        emu.get(BUCKET, "dir/new7"),
        b"7",
        "in COS when close returned"
    );
    // The listing knows the new names too: no request for them, and the old one is kept.
    let before = emu.stats();
    assert_eq!(sh(m.path(), "ls dir | wc -l"), "11\n");
    assert_eq!(fs::read(m.p("dir/old")).unwrap(), b"old");
    assert_eq!(moved(&before, &emu.stats()).get("GetBucket"), None);
}

/// `touch -m -d` and `chmod` of `rel`: the requests each cost, and the state they leave.
fn touch_and_chmod(
    emu: &Emulator,
    m: &Mount,
    rel: &str,
) -> [std::collections::BTreeMap<String, u64>; 2] {
    // The look-up of the name is not the operation's cost.
    fs::metadata(m.p(rel)).unwrap();
    let before = emu.stats();
    fs::set_permissions(m.p(rel), fs::Permissions::from_mode(0o640)).unwrap();
    let chmod = moved(&before, &emu.stats());
    let before = emu.stats();
    sh(m.path(), &format!("touch -m -d @1000000000 {rel}"));
    let touch = moved(&before, &emu.stats());
    let meta = fs::metadata(m.p(rel)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640, "{rel}: mode");
    assert_eq!(
        std::os::unix::fs::MetadataExt::mtime(&meta),
        1_000_000_000,
        "{rel}: mtime"
    );
    [chmod, touch]
}

#[test]
fn touch_and_chmod_of_an_existing_object_are_a_head_and_a_copy() {
    let emu = Emulator::start(&[BUCKET], &[]);
    emu.put(BUCKET, "t/foreign", b"content");
    // No revalidating HEAD at touch's open, however slow the machine: not counted here.
    let m = Mount::new(&emu, BUCKET, "revalidate=600");
    fs::create_dir(m.p("t/own")).unwrap();
    write_in_child(&m.p("t/own/f"), b"mine");
    let two: std::collections::BTreeMap<String, u64> = [
        ("HeadObject".to_string(), 1),
        ("PutObjectCopy".to_string(), 1),
    ]
    .into();
    let three: std::collections::BTreeMap<String, u64> = [
        ("GetObjectACL".to_string(), 1),
        ("HeadObject".to_string(), 1),
        ("PutObjectCopy".to_string(), 1),
    ]
    .into();
    // An object this mount uploaded has the ACL the upload named: no ACL read.
    let [chmod, touch] = touch_and_chmod(&emu, &m, "t/own/f");
    assert_eq!(chmod, two, "chmod of an object this mount wrote");
    assert_eq!(touch, two, "touch of an object this mount wrote");
    // So has a directory marker this mount made (tar sets every directory's times at the end).
    let [chmod, touch] = touch_and_chmod(&emu, &m, "t/own");
    assert_eq!(chmod, two, "chmod of a directory this mount made");
    assert_eq!(touch, two, "touch of a directory this mount made");
    // Another client's object: its ACL is read once, then known (the copy set it).
    let [chmod, touch] = touch_and_chmod(&emu, &m, "t/foreign");
    assert_eq!(chmod, three, "first chmod of a foreign object");
    assert_eq!(touch, two, "touch after that");
    // The metadata is in COS: a fresh mount with an empty cache shows it.
    let m2 = Mount::new(&emu, BUCKET, "");
    for rel in ["t/own/f", "t/own", "t/foreign"] {
        let meta = fs::metadata(m2.p(rel)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640, "{rel} in COS");
    }
    assert_eq!(fs::read(m2.p("t/foreign")).unwrap(), b"content");
}

#[test]
fn a_public_read_acl_survives_chmod_without_being_read_again() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    write_in_child(&m.p("p"), b"public");
    sh(m.path(), "setfattr -n user.cos.acl -v public-read p");
    let before = emu.stats();
    fs::set_permissions(m.p("p"), fs::Permissions::from_mode(0o604)).unwrap();
    let ops = moved(&before, &emu.stats());
    assert_eq!(ops.get("GetObjectACL"), None, "{ops:?}");
    assert_eq!(
        sh(m.path(), "getfattr --only-values -n user.cos.acl p"),
        "public-read"
    );
}

#[test]
fn a_small_file_closed_while_cos_does_not_answer_survives_a_kill_9() {
    let mut emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "");
    fs::create_dir(m.p("d")).unwrap();
    // Every request now takes 70 s: the close waits its bounded time for the upload, which
    // does not land, so the file is made durable in the cache before close returns.
    emu.kill();
    emu.start_again(&[BUCKET], &["--latency-ms", "70000"]);
    write_in_child(&m.p("d/late"), b"kept through the crash");
    let cache = m.kill9();
    emu.kill();
    emu.start_again(&[BUCKET], &[]);
    let m = Mount::with_cache(&emu, BUCKET, "", cache);
    assert_eq!(
        fs::read(m.p("d/late")).unwrap(),
        b"kept through the crash",
        "through the mount"
    );
    m.unmount();
    assert_eq!(
        emu.get(BUCKET, "d/late"),
        b"kept through the crash",
        "in COS"
    );
}

#[test]
fn a_renamed_file_is_touched_without_reading_any_acl() {
    // rsync's way: write a temporary name, rename it into place, then set its times. The
    // rename's copy names the new key's ACL, and other keys' known ACLs stay known.
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "revalidate=600");
    write_in_child(&m.p("p"), b"public");
    sh(m.path(), "setfattr -n user.cos.acl -v public-read p");
    write_in_child(&m.p(".f.tmp"), b"data");
    fs::rename(m.p(".f.tmp"), m.p("f")).unwrap();
    fs::metadata(m.p("f")).unwrap();
    let before = emu.stats();
    sh(m.path(), "touch -m -d @1000000000 f");
    let ops = moved(&before, &emu.stats());
    let two: std::collections::BTreeMap<String, u64> = [
        ("HeadObject".to_string(), 1),
        ("PutObjectCopy".to_string(), 1),
    ]
    .into();
    assert_eq!(ops, two, "touch of a renamed file");
    let before = emu.stats();
    fs::set_permissions(m.p("p"), fs::Permissions::from_mode(0o604)).unwrap();
    let ops = moved(&before, &emu.stats());
    assert_eq!(
        ops.get("GetObjectACL"),
        None,
        "chmod after a rename: {ops:?}"
    );
    assert_eq!(
        sh(m.path(), "getfattr --only-values -n user.cos.acl p"),
        "public-read"
    );
    assert_eq!(
        sh(m.path(), "getfattr --only-values -n user.cos.acl f"),
        "default"
    );
    let meta = fs::metadata(m.p("f")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::mtime(&meta), 1_000_000_000);
    assert_eq!(fs::read(m.p("f")).unwrap(), b"data");
}
