//! Lifecycle tests on a real FUSE mount of a trivial filesystem: readiness, registry, control
//! socket, stop by signal-future and by external unmount, drain at the end.

use super::*;
use crate::config::{options, HostDefaults};
use crate::control::{PreflightView, Request, TaskView};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct NullFs;
impl fuser::Filesystem for NullFs {}

#[derive(Default)]
struct CountingDrain {
    drained: AtomicUsize,
}

#[async_trait::async_trait]
impl Drain for CountingDrain {
    async fn drain(&self) {
        self.drained.fetch_add(1, Ordering::SeqCst);
    }
    fn unfinished(&self) -> usize {
        0
    }
}

struct NoTasks;

#[async_trait::async_trait]
impl ControlHandler for NoTasks {
    fn list(&self) -> Vec<TaskView> {
        Vec::new()
    }
    fn pause(&self, id: u64) -> Result<(), String> {
        Err(format!("no task {id}"))
    }
    fn restart(&self, id: u64) -> Result<(), String> {
        Err(format!("no task {id}"))
    }
    fn cancel(&self, id: u64) -> Result<PathBuf, String> {
        Err(format!("no task {id}"))
    }
    async fn presign(&self, _: &str, _: &str, _: Duration) -> Result<String, String> {
        Err("unsupported".into())
    }
    async fn preflight(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<PreflightView, String> {
        Err("unsupported".into())
    }
}

fn mounted(dir: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = dir.to_string_lossy().to_string();
    text.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn config(mp: &Path, cache: &Path, extra: &[&str]) -> Config {
    let mut items = vec![
        "url=http://127.0.0.1:1".to_string(),
        format!("cache={}", cache.display()),
    ];
    items.extend(extra.iter().map(|s| s.to_string()));
    let o = options::parse_items(&items).unwrap();
    Config::build("null-1", mp, o, true, false, &HostDefaults::current()).unwrap()
}

struct Running {
    handle: std::thread::JoinHandle<(Result<Ending, String>, bool)>,
    drain: Arc<CountingDrain>,
}

fn start(cfg: Config, reg: PathBuf, stop: tokio::sync::oneshot::Receiver<()>) -> Running {
    let drain = Arc::new(CountingDrain::default());
    let d = drain.clone();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (r, w) = {
            let mut fds = [0i32; 2];
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            use std::os::fd::FromRawFd;
            unsafe {
                (
                    std::fs::File::from_raw_fd(fds[0]),
                    std::fs::File::from_raw_fd(fds[1]),
                )
            }
        };
        let mut ready = Readiness::from_file(w);
        let parts = Assembled {
            filesystem: NullFs,
            control: Arc::new(NoTasks),
            uploads: d,
            on_mounted: Box::new(|_| {}),
        };
        let stop = async move {
            let _ = stop.await;
            "test stop".to_string()
        };
        let waiter = std::thread::spawn(move || super::super::daemon::wait_for_child(r));
        let res = serve(&cfg, &rt, parts, &mut ready, &reg, stop);
        drop(ready);
        let was_ready = waiter.join().unwrap().is_ok();
        (res, was_ready)
    });
    Running { handle, drain }
}

#[test]
fn mount_is_ready_registered_and_stops_cleanly() {
    let mp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let reg = tempfile::tempdir().unwrap();
    let cfg = config(mp.path(), cache.path(), &["nosuid", "suid", "nodev"]);
    let mpc = cfg.mountpoint.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let run = start(cfg, reg.path().to_path_buf(), rx);
    assert!(wait_until(|| mounted(&mpc)), "never mounted");
    let sock = cache.path().join("control.sock");
    assert!(wait_until(|| sock.exists()));
    let reply = control::client::request(&sock, &Request::Pause { id: 4 }).unwrap();
    assert_eq!(reply.error.as_deref(), Some("no task 4"));
    let found = std::fs::read_dir(reg.path()).unwrap().count();
    assert_eq!(found, 1, "one registry entry while mounted");
    tx.send(()).unwrap();
    let (res, was_ready) = run.handle.join().unwrap();
    assert_eq!(res.unwrap(), Ending::Stopped("test stop".into()));
    assert!(was_ready, "readiness was reported");
    assert!(!mounted(&mpc), "still mounted after stop");
    assert_eq!(run.drain.drained.load(Ordering::SeqCst), 1);
    assert!(!sock.exists(), "socket removed");
    assert_eq!(std::fs::read_dir(reg.path()).unwrap().count(), 0);
}

#[test]
fn external_unmount_ends_the_daemon_after_draining() {
    let mp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let reg = tempfile::tempdir().unwrap();
    let cfg = config(mp.path(), cache.path(), &[]);
    let mpc = cfg.mountpoint.clone();
    let (_tx, rx) = tokio::sync::oneshot::channel();
    let run = start(cfg, reg.path().to_path_buf(), rx);
    assert!(wait_until(|| mounted(&mpc)), "never mounted");
    let st = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(&mpc)
        .status()
        .unwrap();
    assert!(st.success());
    let (res, _) = run.handle.join().unwrap();
    assert_eq!(res.unwrap(), Ending::Unmounted);
    assert_eq!(run.drain.drained.load(Ordering::SeqCst), 1);
}

#[test]
fn mount_failure_is_reported_not_ready() {
    let mp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let reg = tempfile::tempdir().unwrap();
    let cfg = config(mp.path(), cache.path(), &[]);
    // Mounting on a path that vanished after validation fails in Session::new.
    drop(mp);
    let (_tx, rx) = tokio::sync::oneshot::channel();
    let run = start(cfg, reg.path().to_path_buf(), rx);
    let (res, was_ready) = run.handle.join().unwrap();
    assert!(res.unwrap_err().contains("cannot mount"));
    assert!(!was_ready);
    assert!(
        !cache.path().join("control.sock").exists(),
        "socket left behind"
    );
}

#[test]
fn fuse_config_maps_options() {
    let mp = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let c = fuse_config(&config(
        mp.path(),
        cache.path(),
        &["allow_other", "ro", "nosuid", "suid", "noexec"],
    ));
    assert_eq!(c.acl, SessionACL::All);
    let o = &c.mount_options;
    assert!(o.contains(&MountOption::FSName("cosfuse".into())));
    assert!(o.contains(&MountOption::Subtype("cosfuse".into())));
    assert!(o.contains(&MountOption::DefaultPermissions));
    assert!(o.contains(&MountOption::RO) && !o.contains(&MountOption::RW));
    assert!(o.contains(&MountOption::Suid) && !o.contains(&MountOption::NoSuid));
    assert!(o.contains(&MountOption::NoExec));
    let c = fuse_config(&config(mp.path(), cache.path(), &["allow_root"]));
    assert_eq!(c.acl, SessionACL::RootAndOwner);
    assert!(c.mount_options.contains(&MountOption::RW));
    assert_eq!(c.n_threads, Some(crate::config::DEFAULT_THREADS));
    let c = fuse_config(&config(mp.path(), cache.path(), &["threads=3"]));
    assert_eq!(c.n_threads, Some(3));
}
