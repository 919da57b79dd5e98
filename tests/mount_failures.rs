//! Mount failures (issue 3 "Show it"): wrong secret, missing bucket, a world-readable passwd
//! file and an unreachable endpoint each end `cosfuse` with a non-zero exit and a one-line
//! reason, and leave nothing mounted.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

const BUCKET: &str = "fail-1250000000";

/// Runs `cosfuse` (daemonizing, as a user would) and returns (exit code, stderr).
fn run_mount(
    endpoint: &str,
    bucket: &str,
    dir: &std::path::Path,
    opts: &str,
    envs: &[(&str, &str)],
) -> (i32, String) {
    let mut o = format!("url={endpoint}");
    if !opts.is_empty() {
        o = format!("{o},{opts}");
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cosfuse"));
    cmd.arg(bucket)
        .arg(dir)
        .args(["-o", &o])
        .env_remove("COS_SECRET_ID")
        .env_remove("COS_SECRET_KEY");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run cosfuse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Asserts a failed mount: non-zero exit and nothing mounted (detaching a mount that should
/// not exist first, so a failing test leaves no mount behind).
fn assert_refused(code: i32, dir: &std::path::Path, err: &str) {
    let mounted = is_mounted(dir);
    if mounted {
        let _ = Command::new("fusermount3").arg("-uz").arg(dir).status();
    }
    assert_ne!(code, 0, "mount succeeded: {err}");
    assert!(!mounted, "left mounted: {err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "not a one-line reason: {err}"
    );
}

fn creds() -> Vec<(&'static str, &'static str)> {
    vec![("COS_SECRET_ID", SECRET_ID), ("COS_SECRET_KEY", SECRET_KEY)]
}

#[test]
fn wrong_secret_fails_with_the_cos_code() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_mount(
        &emu.endpoint,
        BUCKET,
        dir.path(),
        "",
        &[
            ("COS_SECRET_ID", SECRET_ID),
            ("COS_SECRET_KEY", "wrong-secret"),
        ],
    );
    assert_refused(code, dir.path(), &err);
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
}

#[test]
fn missing_bucket_fails_with_no_such_bucket() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_mount(&emu.endpoint, "absent-1250000000", dir.path(), "", &creds());
    assert_refused(code, dir.path(), &err);
    assert!(err.contains("NoSuchBucket"), "{err}");
}

#[test]
fn world_readable_passwd_file_is_refused() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let dir = tempfile::tempdir().unwrap();
    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), format!("{SECRET_ID}:{SECRET_KEY}\n")).unwrap();
    std::fs::set_permissions(pw.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let opt = format!("passwd_file={}", pw.path().display());
    let (code, err) = run_mount(&emu.endpoint, BUCKET, dir.path(), &opt, &[]);
    assert_refused(code, dir.path(), &err);
    assert!(
        err.contains(&pw.path().display().to_string()) && err.to_lowercase().contains("readable"),
        "{err}"
    );
    // The same file with mode 0600 mounts.
    std::fs::set_permissions(pw.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, err) = run_mount(&emu.endpoint, BUCKET, dir.path(), &opt, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(is_mounted(dir.path()));
    fusermount_u(dir.path());
    assert!(wait_until(Duration::from_secs(10), || !is_mounted(
        dir.path()
    )));
}

#[test]
fn unreachable_endpoint_fails_promptly() {
    let mut emu = Emulator::start(&[BUCKET], &[]);
    let endpoint = emu.endpoint.clone();
    emu.kill();
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_mount(&endpoint, BUCKET, dir.path(), "", &creds());
    assert_refused(code, dir.path(), &err);
    assert!(
        err.to_lowercase().contains("connect") || err.to_lowercase().contains("unreachable"),
        "{err}"
    );
}

#[test]
fn bad_option_is_named_in_the_error() {
    let emu = Emulator::start(&[BUCKET], &[]);
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run_mount(
        &emu.endpoint,
        BUCKET,
        dir.path(),
        "no_such_option=1",
        &creds(),
    );
    assert_refused(code, dir.path(), &err);
    assert!(err.contains("no_such_option"), "{err}");
}
