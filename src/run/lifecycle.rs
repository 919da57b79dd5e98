//! The life of a mount once its parts exist: kernel mount (fuser `Session`), readiness, control
//! socket, serving until unmount or a signal, then unmount and drain of the upload queue.
//!
//! Generic over the filesystem type so it is tested with a trivial filesystem on a real FUSE
//! mount, independent of the fs core.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fuser::{MountOption, SessionACL};

use super::daemon::Readiness;
use crate::config::{Config, KernelFlag};
use crate::control::{self, registry, ControlHandler};

/// Waits for the upload queue to empty (Queued/Running tasks finished).
#[async_trait::async_trait]
pub trait Drain: Send + Sync {
    /// Returns when nothing is queued or running.
    async fn drain(&self);
    /// Tasks not finished (queued, running, paused, failed), for the log line before draining.
    fn unfinished(&self) -> usize;
}

/// Everything `wire` builds, ready to mount.
pub struct Assembled<F: fuser::Filesystem + Send + 'static> {
    /// The fuser filesystem (the adapter over `fs::Fs`).
    pub filesystem: F,
    /// What the control socket serves.
    pub control: Arc<dyn ControlHandler>,
    /// The upload queue, drained at the end.
    pub uploads: Arc<dyn Drain>,
    /// Called with the session's notifier once the kernel mount exists (so the fs core can
    /// invalidate what the kernel caches).
    pub on_mounted: Box<dyn FnOnce(fuser::Notifier) + Send>,
}

/// Why the mount ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Someone ran `fusermount3 -u` / `umount`.
    Unmounted,
    /// A signal (or the test's shutdown future) asked us to stop.
    Stopped(String),
}

/// fuser configuration from our options.
pub fn fuse_config(cfg: &Config) -> fuser::Config {
    let mut opts = vec![
        MountOption::FSName(cfg.fuse.fsname.clone()),
        MountOption::Subtype("cosfuse".into()),
        // The kernel checks mode bits against uid/gid (which we persist in x-cos-meta-*), so the
        // fs core does not re-implement permission checks.
        MountOption::DefaultPermissions,
        if cfg.fuse.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    for f in &cfg.fuse.kernel_flags {
        opts.push(match f {
            KernelFlag::Suid => MountOption::Suid,
            KernelFlag::NoSuid => MountOption::NoSuid,
            KernelFlag::Dev => MountOption::Dev,
            KernelFlag::NoDev => MountOption::NoDev,
            KernelFlag::Exec => MountOption::Exec,
            KernelFlag::NoExec => MountOption::NoExec,
            KernelFlag::Atime => MountOption::Atime,
            KernelFlag::NoAtime => MountOption::NoAtime,
            KernelFlag::Sync => MountOption::Sync,
            KernelFlag::Async => MountOption::Async,
            KernelFlag::DirSync => MountOption::DirSync,
        });
    }
    // fuser refuses conflicting pairs (suid + nosuid); keep the last of each pair, as mount does.
    dedupe_pairs(&mut opts);
    let mut c = fuser::Config::default();
    c.mount_options = opts;
    // Calls start on the thread that read them (fuse/adapter.rs `inline`), so more than one
    // such thread lets the kernel hand the next request over while one is busy or waking.
    c.n_threads = Some(cfg.fuse.threads);
    c.acl = if cfg.fuse.allow_other {
        SessionACL::All
    } else if cfg.fuse.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    c
}

fn dedupe_pairs(opts: &mut Vec<MountOption>) {
    use MountOption::*;
    let pairs = [
        (Suid, NoSuid),
        (Dev, NoDev),
        (Exec, NoExec),
        (Atime, NoAtime),
        (Sync, Async),
        (RO, RW),
    ];
    let mut keep = vec![true; opts.len()];
    for i in 0..opts.len() {
        for (a, b) in &pairs {
            if opts[i] == *a || opts[i] == *b {
                // Drop this one if it, or its opposite, appears again later.
                if opts[i + 1..].iter().any(|o| o == a || o == b) {
                    keep[i] = false;
                }
            }
        }
    }
    let mut it = keep.iter();
    opts.retain(|_| *it.next().unwrap_or(&true));
}

/// Mounts, reports readiness, serves until unmount or `stop` completes, then unmounts (lazily
/// if busy) and drains the upload queue. Runs on the calling thread; `rt` hosts the async work.
pub fn serve<F, S>(
    cfg: &Config,
    rt: &tokio::runtime::Runtime,
    parts: Assembled<F>,
    ready: &mut Readiness,
    registry_dir: &Path,
    stop: S,
) -> Result<Ending, String>
where
    F: fuser::Filesystem + Send + 'static,
    S: Future<Output = String> + Send + 'static,
{
    let socket_path = cfg.cache_dir.join(control::SOCKET_NAME);
    // The control socket is a convenience: a mount without it (e.g. a cache path longer than a
    // socket address allows) still serves files, and the log says why `cosfuse tasks` fails.
    let listener = {
        let _guard = rt.enter();
        control::server::bind(&socket_path)
            .map_err(|e| log::warn!("no control socket at {}: {e}", socket_path.display()))
            .ok()
    };
    let mut session =
        match fuser::Session::new(parts.filesystem, &cfg.mountpoint, &fuse_config(cfg)) {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&socket_path);
                return Err(format!("cannot mount on {}: {e}", cfg.mountpoint.display()));
            }
        };
    (parts.on_mounted)(session.notifier());
    let mut unmounter = session.unmount_callable();
    let registration = registry::register(
        registry_dir,
        &registry::Entry {
            mountpoint: cfg.mountpoint.clone(),
            socket: socket_path.clone(),
            pid: std::process::id(),
            bucket: cfg.bucket.as_str().to_string(),
            prefix: cfg.prefix.clone(),
        },
    )
    .map_err(|e| {
        log::warn!(
            "cannot register the mount in {}: {e}",
            registry_dir.display()
        )
    })
    .ok();
    let (ctl_stop_tx, ctl_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let counters = parts.control.clone();
    let control_task = listener.map(|l| {
        rt.spawn(control::server::serve(l, parts.control, async {
            let _ = ctl_stop_rx.await;
        }))
    });
    let (ended_tx, mut ended_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("fuse-session".into())
        .spawn(move || {
            let r = session.run();
            let _ = ended_tx.send(r);
        })
        .map_err(|e| format!("cannot start the FUSE session thread: {e}"))?;
    super::readahead::raise(&cfg.mountpoint);
    log::info!(
        "mounted {}:/{} on {}",
        cfg.bucket.as_str(),
        cfg.prefix,
        cfg.mountpoint.display()
    );
    ready.ready();

    let mountpoint = cfg.mountpoint.clone();
    let ending = rt.block_on(async move {
        tokio::pin!(stop);
        let ending = tokio::select! {
            r = &mut ended_rx => {
                if let Ok(Err(e)) = r {
                    log::error!("FUSE session ended with an error: {e}");
                }
                return Ending::Unmounted;
            }
            why = &mut stop => Ending::Stopped(why),
        };
        log::info!("{}: unmounting {}", describe(&ending), mountpoint.display());
        if let Err(e) = unmounter.unmount() {
            log::warn!(
                "unmount failed ({e}); detaching lazily, open files keep working until closed"
            );
            lazy_unmount(&mountpoint);
        }
        // The session thread ends once the kernel lets go of the mount.
        let _ = ended_rx.await;
        ending
    });

    let n = parts.uploads.unfinished();
    if n > 0 {
        log::info!("waiting for {n} upload(s) to finish before exiting");
    }
    rt.block_on(parts.uploads.drain());
    let left = parts.uploads.unfinished();
    if left > 0 {
        log::warn!(
            "{left} upload(s) paused, failed or waiting for a retry; they stay journaled in {} and resume at the next mount",
            cfg.cache_dir.display()
        );
    }
    let _ = ctl_stop_tx.send(());
    if let Some(task) = control_task {
        let _ = rt.block_on(task);
    }
    let _ = std::fs::remove_file(&socket_path);
    drop(registration);
    if let Some(s) = counters.stats() {
        // The same counters `cosfuse stats` shows, for the record of this mount.
        log::info!(
            "counters: {}",
            serde_json::to_string(&s).unwrap_or_default()
        );
    }
    log::info!("{} unmounted", cfg.mountpoint.display());
    Ok(ending)
}

fn describe(e: &Ending) -> String {
    match e {
        Ending::Unmounted => "unmounted".into(),
        Ending::Stopped(why) => why.clone(),
    }
}

/// Detaches a busy mount: `umount2(MNT_DETACH)` as root, else `fusermount3 -u -z`.
pub fn lazy_unmount(mountpoint: &Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(mountpoint.as_os_str().as_bytes()) {
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
            return;
        }
    }
    let _ = std::process::Command::new("fusermount3")
        .args(["-u", "-z", "--"])
        .arg(mountpoint)
        .status();
}

/// A future that completes with the name of the first SIGTERM or SIGINT. Must be created
/// inside the runtime, before mounting, so no signal is lost to the default action.
pub fn signals() -> std::io::Result<impl Future<Output = String> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM".to_string(),
            _ = int.recv() => "SIGINT".to_string(),
        }
    })
}

/// The daemon's log file (its stderr): `logfile=` or `CACHE/cosfuse.log` (which, when the log
/// goes to syslog, only catches stray output such as a panic message).
pub fn log_file(cfg: &Config) -> PathBuf {
    cfg.log
        .file
        .clone()
        .unwrap_or_else(|| cfg.cache_dir.join("cosfuse.log"))
}

#[cfg(test)]
mod tests;
