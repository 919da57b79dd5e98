//! The `cosfuse` binary's command line without a running endpoint: usage errors (exit 2),
//! credential refusals (exit 1) and the daemon's failure report reaching the parent's stderr
//! (exit 1, promptly, with no descriptor left holding the caller's pipes open).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs cosfuse with `args` and a clean credential environment plus `env`; returns (code,
/// stderr). Fails the test if the process (or a child holding its stderr) outlives 60 s.
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cosfuse"));
    cmd.args(args)
        .env_remove("COS_SECRET_ID")
        .env_remove("COS_SECRET_KEY")
        .env_remove("COSACCESSKEYID")
        .env_remove("COSSECRETACCESSKEY")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn cosfuse");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "cosfuse did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reader.is_finished() {
        assert!(
            Instant::now() < deadline,
            "something still holds cosfuse's stderr open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

#[test]
fn unknown_option_is_named_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let mp = dir.path().to_str().unwrap();
    let (code, err) = run(
        &["b-1250000000", mp, "-o", "url=http://127.0.0.1:1,bogus=1"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim(), "cosfuse: unknown mount option 'bogus'");
    let (code, err) = run(&["b-1250000000", mp, "-o", "uid=me"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("uid=me"), "{err}");
}

#[test]
fn bad_bucket_and_missing_endpoint_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mp = dir.path().to_str().unwrap();
    let (code, err) = run(&["Bad_Bucket", mp, "-o", "url=http://127.0.0.1:1"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid bucket name 'Bad_Bucket'"), "{err}");
    let (code, err) = run(&["b-1250000000", mp], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("region="), "{err}");
    let (code, _) = run(&["b-1250000000"], &[]);
    assert_eq!(code, 2);
}

#[test]
fn credentials_problems_fail_before_anything_is_mounted() {
    let dir = tempfile::tempdir().unwrap();
    let mp = dir.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    let mp = mp.to_str().unwrap();
    let (code, err) = run(&["b-1250000000", mp, "-o", "url=http://127.0.0.1:1"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("no credentials"), "{err}");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "AKIDx:key\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o640)).unwrap();
    let opt = format!("url=http://127.0.0.1:1,passwd_file={}", pw.display());
    let (code, err) = run(&["b-1250000000", mp, "-o", &opt], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("chmod 600") && err.contains(&pw.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_failing_daemon_reports_through_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let mp = dir.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    // Port 1 on 127.0.0.1 refuses connections: the daemon cannot prove access and says so.
    let opt = format!(
        "url=http://127.0.0.1:1,cache={}",
        dir.path().join("cache").display()
    );
    let (code, err) = run(
        &["b-1250000000", mp.to_str().unwrap(), "-o", &opt],
        &[("COS_SECRET_ID", "AKIDx"), ("COS_SECRET_KEY", "k")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("cosfuse: ") && err.lines().count() == 1,
        "{err}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(mp.to_str().unwrap()));
}

#[test]
fn help_and_subcommand_errors() {
    let (code, _) = run(&["--help"], &[]);
    assert_eq!(code, 0);
    let (code, err) = run(&["tasks", "/nonexistent-mount"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent-mount"), "{err}");
    let (code, err) = run(&["tasks", "/", "explode", "1"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("explode"), "{err}");
}
