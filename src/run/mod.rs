//! Wiring: store + fs + adapter + mount + signals + clean unmount and queue drain.
//!
//! `main` calls [`main`]; it parses the command line, validates the configuration, resolves
//! credentials, daemonizes (unless `-f`), sets up logging and hands over to `wire` (builds the
//! client, cache, queue, fs and adapter) and `lifecycle` (mount, serve, unmount, drain).

use std::ffi::OsString;

use crate::cli::{self, Invocation, MountArgs, Tool};
use crate::config::{options, Config, HostDefaults};
use crate::control::{commands, registry};

pub mod adapters;
pub mod daemon;
pub mod lifecycle;
pub mod logging;
pub mod readahead;
pub mod syslog;
pub mod wire;

/// Runs `cosfuse` with `args` (including argv[0]); returns the process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    match cli::parse(args) {
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            code
        }
        Ok(Invocation::Tool(Tool::Tasks(a))) => commands::tasks(&a),
        Ok(Invocation::Tool(Tool::Presign(a))) => commands::presign(&a),
        Ok(Invocation::Tool(Tool::Stats(a))) => commands::stats(&a),
        Ok(Invocation::Tool(Tool::Preflight(a))) => commands::preflight(&a),
        Ok(Invocation::Tool(Tool::Completions { shell })) => {
            use std::io::Write;
            let script = crate::docgen::completions(shell);
            i32::from(std::io::stdout().write_all(&script).is_err())
        }
        Ok(Invocation::Tool(Tool::GenerateMan { file })) => generate_man(&file),
        Ok(Invocation::Mount(m)) => mount(&m),
    }
}

/// `cosfuse generate-man FILE`: FILE with its generated options part re-rendered, on stdout.
fn generate_man(file: &std::path::Path) -> i32 {
    let page = match std::fs::read_to_string(file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cosfuse: {}: {e}", file.display());
            return 1;
        }
    };
    match crate::docgen::splice_man(&page, &crate::docgen::man_options()) {
        Ok(p) => {
            print!("{p}");
            0
        }
        Err(e) => {
            eprintln!("cosfuse: {}: {e}", file.display());
            1
        }
    }
}

/// Validates, daemonizes and mounts. Exit codes: 0 mounted (daemon: the parent; foreground:
/// after a clean unmount), 1 the mount failed, 2 bad usage or options.
fn mount(m: &MountArgs) -> i32 {
    let opts = match options::parse_items(&m.option_items()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cosfuse: {e}");
            return 2;
        }
    };
    let host = HostDefaults::current();
    let cfg = match Config::build(&m.bucket, &m.mountpoint, opts, m.foreground, m.debug, &host) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cosfuse: {e}");
            return 2;
        }
    };
    let creds = match cfg.credential_sources().resolve(cfg.bucket.as_str()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cosfuse: {e}");
            return 1;
        }
    };
    if let Err(e) = create_private_dir(&cfg.cache_dir) {
        eprintln!("cosfuse: cache directory {}: {e}", cfg.cache_dir.display());
        return 1;
    }
    let log_file = lifecycle::log_file(&cfg);
    let mut ready = if cfg.foreground {
        daemon::Readiness::foreground()
    } else {
        // Nothing above started a thread: forking here is safe (see daemon.rs).
        match daemon::daemonize(daemon::DaemonIo {
            log_file: Some(&log_file),
        }) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cosfuse: cannot daemonize: {e}");
                return 1;
            }
        }
    };
    logging::init(cfg.log.level, cfg.log.file.as_deref(), !cfg.foreground);
    match run_mount(&cfg, creds, &mut ready) {
        Ok(()) => 0,
        Err(e) => {
            log::error!("{e}");
            if ready.pending() {
                ready.fail(&e);
            }
            if cfg.foreground {
                eprintln!("cosfuse: {e}");
            }
            1
        }
    }
}

fn run_mount(
    cfg: &Config,
    creds: Box<dyn crate::config::CredentialsProvider>,
    ready: &mut daemon::Readiness,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cosfuse")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let stop = {
        let _g = rt.enter();
        lifecycle::signals().map_err(|e| format!("cannot install signal handlers: {e}"))?
    };
    let parts = rt.block_on(wire::assemble(cfg, creds))?;
    lifecycle::serve(cfg, &rt, parts, ready, &registry::default_dir(), stop)?;
    Ok(())
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
