//! POSIX ACLs (issue 10) on a real mount with `allow_other`: `setfacl`/`getfacl` give exactly
//! what the same commands give on a local directory (access ACLs, `setfacl -x`/`-b`/`-k`,
//! default ACLs inherited by new files, FIFOs and subdirectories, chmod rewriting the mask),
//! the kernel enforces them for another user (`nobody`), and all of it holds after an unmount
//! and a mount with an empty cache (the ACLs live in the objects' `x-cos-meta-xattr`) and with
//! the kept cache. Once a listing has loaded the metadata, reading ACLs and the kernel's
//! permission checks cost no HEAD.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const BUCKET: &str = "acl-1250000000";

/// The first sequence: access ACLs on files and a directory, a default ACL and what inherits
/// it, chmod with a mask, `setfacl -x` and `-b`.
const SEQ1: &str = "umask 022
echo secret > f && chmod 600 f && setfacl -m u:nobody:r f
mkdir d && setfacl -m d:u:nobody:rwx,d:o::- d
touch d/new && mkdir d/sub && echo x > d/sub/deep && mkfifo d/fifo
echo y > g && setfacl -m u:nobody:rw,g::r g && chmod 640 g
echo z > h && setfacl -m u:nobody:r h && setfacl -x u:nobody h
echo w > k && setfacl -m u:nobody:rwx k && setfacl -b k
mkdir e && chmod 750 e && setfacl -m u:nobody:rx e";

/// The second sequence: take nobody's entry away, chmod a directory with an ACL, remove a
/// default ACL.
const SEQ2: &str = "setfacl -x u:nobody f && chmod 700 d/sub && setfacl -k d";

/// Mode and ACLs of every path the sequences touch.
const DUMP: &str = "for x in f d d/new d/sub d/sub/deep d/fifo g h k e; do
  stat -c '%n %A' $x; getfacl -c $x; done";

/// What the sequences give on a local directory (ext4 or tmpfs, both with ACLs).
fn local(seqs: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for s in seqs {
        sh(dir.path(), s);
    }
    sh(dir.path(), DUMP)
}

/// Runs `script` as `nobody` in `cwd`; true when it succeeds.
fn as_nobody(cwd: &Path, script: &str) -> bool {
    Command::new("runuser")
        .args(["-u", "nobody", "--", "sh", "-c", script])
        .current_dir(cwd)
        .output()
        .unwrap()
        .status
        .success()
}

/// What the ACLs after SEQ1 let `nobody` do (and not do).
fn check_enforced_after_seq1(root: &Path, when: &str) {
    assert!(
        as_nobody(root, "cat f"),
        "{when}: u:nobody:r on a 0600 file"
    );
    assert!(
        as_nobody(root, "echo n >> d/new"),
        "{when}: inherited u:nobody:rwx (mask rw-) lets nobody write"
    );
    assert!(
        as_nobody(root, "cat g"),
        "{when}: u:nobody:rw with mask r--"
    );
    assert!(
        !as_nobody(root, "echo n >> g"),
        "{when}: the mask (chmod 640) limits nobody's rw- to r--"
    );
    assert!(as_nobody(root, "ls e"), "{when}: u:nobody:rx on a 0750 dir");
    assert!(
        as_nobody(root, "cat d/sub/deep"),
        "{when}: inherited through a new subdirectory"
    );
    assert!(
        !as_nobody(root, "echo n >> k"),
        "{when}: nothing of u:nobody:rwx is left after setfacl -b"
    );
}

/// What the ACLs after SEQ2 refuse `nobody`.
fn check_enforced_after_seq2(root: &Path, when: &str) {
    assert!(!as_nobody(root, "cat f"), "{when}: setfacl -x took it away");
    assert!(
        !as_nobody(root, "ls d/sub"),
        "{when}: chmod 700 set the mask to ---"
    );
}

/// Mounts with `cache`, loads the metadata with one listing of every directory, then checks
/// that the dump and the kernel's checks cost no HEAD.
fn remount_and_check(emu: &Emulator, cache: std::path::PathBuf, want: &str, label: &str) -> Mount {
    let m = Mount::with_cache(emu, BUCKET, "allow_other", cache);
    sh(m.path(), "ls -l . d d/sub e >/dev/null");
    let before = emu.stats();
    assert_eq!(
        sh(m.path(), DUMP),
        want,
        "{label}: getfacl as on a local disk"
    );
    let after = emu.stats();
    assert_eq!(
        delta(&before, &after, "HeadObject"),
        0,
        "{label}: ACLs of listed objects come from the metadata cache"
    );
    m
}

#[test]
fn setfacl_and_getfacl_behave_as_on_a_local_disk_across_remounts() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "allow_other");
    sh(m.path(), SEQ1);
    let want1 = local(&[SEQ1]);
    assert!(want1.contains("user:nobody:rwx\t#effective:rw-"), "{want1}");
    assert_eq!(sh(m.path(), DUMP), want1, "same mount");
    check_enforced_after_seq1(m.path(), "same mount");
    // `cat d/new` by root sees what nobody appended: the write went through the ACL.
    assert_eq!(sh(m.path(), "cat d/new"), "n\n");
    let m = remount_and_check(
        &emu,
        tempfile::tempdir().unwrap().keep(),
        &want1,
        "empty cache",
    );
    check_enforced_after_seq1(m.path(), "empty cache");

    sh(m.path(), SEQ2);
    let want2 = local(&[SEQ1, SEQ2]);
    assert_eq!(sh(m.path(), DUMP), want2, "after SEQ2");
    check_enforced_after_seq2(m.path(), "after SEQ2");
    let kept = m.unmount();
    let m = remount_and_check(
        &emu,
        tempfile::tempdir().unwrap().keep(),
        &want2,
        "SEQ2, empty cache",
    );
    check_enforced_after_seq2(m.path(), "SEQ2, empty cache");
    m.unmount();
    let m = remount_and_check(&emu, kept, &want2, "SEQ2, kept cache");
    check_enforced_after_seq2(m.path(), "SEQ2, kept cache");
    m.unmount();
}

#[test]
fn bad_acls_and_acls_where_none_can_be_are_refused() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let m = Mount::new(&emu, BUCKET, "allow_other");
    sh(m.path(), "echo x > f");
    // A default ACL on a file: refused by the kernel before it reaches us (EACCES).
    let out = Command::new("setfacl")
        .args(["-m", "d:u:nobody:r", "f"])
        .current_dir(m.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "default ACL on a file");
    // A malformed value (an owner entry only) is EINVAL: the kernel validates the form
    // before it reaches us.
    let out = Command::new("setfattr")
        .args([
            "-n",
            "system.posix_acl_access",
            "-v",
            "0x0200000001000600ffffffff",
            "f",
        ])
        .current_dir(m.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "an ACL with an owner entry only");
    // The mount root has no object to carry an ACL.
    let out = Command::new("setfacl")
        .args(["-m", "u:nobody:r", "."])
        .current_dir(m.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not supported"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Names outside the known namespaces never reach the filesystem.
    let out = Command::new("setfattr")
        .args(["-n", "plain", "-v", "1", "f"])
        .current_dir(m.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not supported"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    m.unmount();
}
