//! Command line of `cosfuse` (clap), including the `-o a,b=c` mount-helper form.
//!
//! Two shapes share one binary: the mount form `cosfuse BUCKET-APPID[:/prefix] MOUNTPOINT [-o
//! opts]...` (what `mount.fuse3` and fstab run) and a few subcommands (`tasks`, `preflight`,
//! `presign`). A bucket can never be called `tasks` (COS names end in `-APPID`), so the first
//! argument alone decides which parser runs and neither shape steals the other's words.
//!
//! Long flags of the mount form are sugar: each turns into the `-o` option of the same name, so
//! one parser (`config::options`) validates everything and fstab and the shell agree.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Names of the subcommands; an argv[1] equal to one of these selects the subcommand parser.
pub const SUBCOMMANDS: &[&str] = &[
    "tasks",
    "preflight",
    "presign",
    "stats",
    "completions",
    "generate-man",
    "help",
];

/// `cosfuse BUCKET-APPID[:/prefix] MOUNTPOINT [-o opt[,opt...]]... [-f] [-d]`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cosfuse",
    version,
    about = "Mount a Tencent Cloud COS bucket as a directory (FUSE)",
    after_help = "Subcommands (run `cosfuse SUBCOMMAND --help`):\n  \
        tasks MOUNTPOINT [--watch] [pause|restart|cancel ID]   the upload queue of a mount\n  \
        preflight MOUNTPOINT/PATH --origin O --method M        a CORS preflight (OPTIONS Object)\n  \
        presign PATH [--method GET|PUT] [--expires S]          a presigned URL\n\n\
        Options are documented in cosfuse(1)."
)]
pub struct MountArgs {
    /// The bucket, `NAME-APPID`, optionally followed by `:/prefix` to mount a sub-directory.
    #[arg(value_name = "BUCKET-APPID[:/prefix]")]
    pub bucket: String,
    /// The directory to mount on.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
    /// Mount options, comma separated (repeatable): url=, region=, passwd_file=, allow_other, ...
    #[arg(short = 'o', value_name = "OPT[,OPT...]", action = clap::ArgAction::Append,
          help_heading = "Mount options")]
    pub options: Vec<String>,
    /// Stay in the foreground (do not daemonize); logs go to stderr.
    #[arg(short = 'f', long = "foreground", help_heading = "Process")]
    pub foreground: bool,
    /// Debug logging (implies nothing else; combine with -f to see it on the terminal).
    #[arg(short = 'd', long = "debug", help_heading = "Process")]
    pub debug: bool,
    /// Accepted and ignored: mount(8) passes these to helpers (no mtab, sloppy, verbose).
    #[arg(short = 'n', short_alias = 's', hide = true)]
    pub mount_helper_flag: bool,
    /// Custom endpoint URL (path style), e.g. http://127.0.0.1:9000 (same as -o url=).
    #[arg(long, value_name = "URL", help_heading = "Endpoint and credentials")]
    pub url: Option<String>,
    /// COS region, e.g. ap-guangzhou (same as -o region=).
    #[arg(long, value_name = "REGION", help_heading = "Endpoint and credentials")]
    pub region: Option<String>,
    /// Extra PEM CA bundle trusted besides the system roots, repeatable (same as -o cafile=).
    #[arg(long, value_name = "FILE", help_heading = "Endpoint and credentials")]
    pub cafile: Vec<PathBuf>,
    /// Put the bucket into the --url host name: https://BUCKET.HOST (same as -o vhost).
    #[arg(long, help_heading = "Endpoint and credentials")]
    pub vhost: bool,
    /// Credentials file in cosfs's formats (same as -o passwd_file=).
    #[arg(
        long = "passwd-file",
        value_name = "FILE",
        help_heading = "Endpoint and credentials"
    )]
    pub passwd_file: Option<PathBuf>,
    /// Let other users access the mount (same as -o allow_other).
    #[arg(long = "allow-other", help_heading = "Access")]
    pub allow_other: bool,
    /// Mount read-only (same as -o ro).
    #[arg(long = "read-only", help_heading = "Access")]
    pub read_only: bool,
    /// Owner of objects without x-cos-meta-uid (same as -o uid=).
    #[arg(long, value_name = "UID", help_heading = "Access")]
    pub uid: Option<u32>,
    /// Group of objects without x-cos-meta-gid (same as -o gid=).
    #[arg(long, value_name = "GID", help_heading = "Access")]
    pub gid: Option<u32>,
    /// Octal umask for objects without x-cos-meta-mode (same as -o umask=).
    #[arg(long, value_name = "OCTAL", help_heading = "Access")]
    pub umask: Option<String>,
    /// Staging and cache directory (same as -o cache=).
    #[arg(long, value_name = "DIR", help_heading = "Cache and uploads")]
    pub cache: Option<PathBuf>,
    /// Seconds file attributes stay cached (same as -o attr_ttl=).
    #[arg(
        long = "attr-ttl",
        value_name = "SECS",
        help_heading = "Cache and uploads"
    )]
    pub attr_ttl: Option<String>,
    /// Seconds a "does not exist" answer stays cached (same as -o neg_ttl=).
    #[arg(
        long = "neg-ttl",
        value_name = "SECS",
        help_heading = "Cache and uploads"
    )]
    pub neg_ttl: Option<String>,
    /// Deadline of each request of a filesystem call (same as -o op_timeout=).
    #[arg(
        long = "op-timeout",
        value_name = "SECS",
        help_heading = "Cache and uploads"
    )]
    pub op_timeout: Option<String>,
    /// An open checks a file not validated within SECS with one HEAD (same as -o revalidate=).
    #[arg(long, value_name = "SECS", help_heading = "Cache and uploads")]
    pub revalidate: Option<String>,
    /// Multipart part size, e.g. 8M (same as -o part_size=).
    #[arg(
        long = "part-size",
        value_name = "SIZE",
        help_heading = "Cache and uploads"
    )]
    pub part_size: Option<String>,
    /// Parts transferred in parallel per file (same as -o parallel=).
    #[arg(long, value_name = "N", help_heading = "Cache and uploads")]
    pub parallel: Option<String>,
    /// Files at least this large use multipart upload (same as -o multipart_threshold=).
    #[arg(
        long = "multipart-threshold",
        value_name = "SIZE",
        help_heading = "Cache and uploads"
    )]
    pub multipart_threshold: Option<String>,
    /// Content-Type of new objects: auto (from the extension), off, or a type (same as
    /// -o content_type=).
    #[arg(long = "content-type", value_name = "TYPE", help_heading = "Objects")]
    pub content_type: Option<String>,
    /// Storage class of new objects (same as -o storage_class=).
    #[arg(long = "storage-class", value_name = "CLASS", help_heading = "Objects")]
    pub storage_class: Option<String>,
    /// Canned ACL of new objects (same as -o acl=).
    #[arg(long, value_name = "ACL", help_heading = "Objects")]
    pub acl: Option<String>,
    /// Expiry in seconds of user.cos.url presigned URLs (same as -o presign_expires=).
    #[arg(
        long = "presign-expires",
        value_name = "SECS",
        help_heading = "Objects"
    )]
    pub presign_expires: Option<String>,
    /// error, warn, info, debug or trace (same as -o loglevel=).
    #[arg(long, value_name = "LEVEL", help_heading = "Process")]
    pub loglevel: Option<String>,
    /// Log file (same as -o logfile=); a daemon without one logs to syslog/journald.
    #[arg(long, value_name = "FILE", help_heading = "Process")]
    pub logfile: Option<PathBuf>,
}

impl MountArgs {
    /// All options as `name` / `name=value` items: every `-o` list split on commas, then the long
    /// flags (so a flag given on the shell line wins over the same `-o` from fstab).
    pub fn option_items(&self) -> Vec<String> {
        let mut items: Vec<String> = self
            .options
            .iter()
            .flat_map(|o| o.split(','))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut kv = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                items.push(format!("{name}={v}"));
            }
        };
        kv("url", &self.url);
        kv("region", &self.region);
        kv("passwd_file", &path_text(&self.passwd_file));
        kv("uid", &self.uid.map(|u| u.to_string()));
        kv("gid", &self.gid.map(|g| g.to_string()));
        kv("umask", &self.umask);
        kv("cache", &path_text(&self.cache));
        kv("attr_ttl", &self.attr_ttl);
        kv("neg_ttl", &self.neg_ttl);
        kv("revalidate", &self.revalidate);
        kv("op_timeout", &self.op_timeout);
        kv("part_size", &self.part_size);
        kv("parallel", &self.parallel);
        kv("multipart_threshold", &self.multipart_threshold);
        kv("storage_class", &self.storage_class);
        kv("content_type", &self.content_type);
        kv("acl", &self.acl);
        kv("presign_expires", &self.presign_expires);
        kv("loglevel", &self.loglevel);
        kv("logfile", &path_text(&self.logfile));
        for f in &self.cafile {
            items.push(format!("cafile={}", f.display()));
        }
        if self.vhost {
            items.push("vhost".into());
        }
        if self.allow_other {
            items.push("allow_other".into());
        }
        if self.read_only {
            items.push("ro".into());
        }
        items
    }
}

fn path_text(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

/// `cosfuse SUBCOMMAND ...`: the commands that talk to a running mount or to COS directly.
#[derive(Debug, Clone, Parser)]
#[command(name = "cosfuse", version, about = "cosfuse helper commands")]
pub struct ToolArgs {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Tool,
}

/// One helper command.
#[derive(Debug, Clone, Subcommand)]
pub enum Tool {
    /// List or steer the upload queue of a running mount.
    Tasks(TasksArgs),
    /// Send a CORS preflight (OPTIONS Object) for a file of a mount and print the answer.
    Preflight(PreflightArgs),
    /// Print a presigned URL for a file of a mount.
    Presign(PresignArgs),
    /// Print a running mount's counters: requests by COS operation and outcome with p50/p99
    /// latency, bytes up and down, cache hits and misses, queue depth, errors by errno.
    Stats(StatsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell); packaging aid.
    #[command(hide = true)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page FILE with its generated options part re-rendered from this command
    /// line's definitions (scripts/gen-man.sh); packaging aid.
    #[command(name = "generate-man", hide = true)]
    GenerateMan {
        /// The hand-written page with the generated-part markers (man/cosfuse.1).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `cosfuse stats MOUNTPOINT [--json]`.
#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    /// The mount point of a running cosfuse (or its cache directory).
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
    /// One JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `cosfuse tasks MOUNTPOINT [--watch] [pause|restart|cancel ID]`.
#[derive(Debug, Clone, Args)]
pub struct TasksArgs {
    /// The mount point of a running cosfuse (or its cache directory).
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
    /// Show live progress bars until no upload is queued or running.
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// Give up watching after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub watch_limit: u64,
    /// Optional action: `pause ID`, `restart ID` or `cancel ID`.
    #[arg(value_name = "ACTION ID", num_args = 0..=2)]
    pub action: Vec<String>,
}

/// An action on one upload task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskAction {
    /// Hold a queued or running upload.
    Pause(u64),
    /// Resume a paused upload or retry a failed one.
    Restart(u64),
    /// Drop the upload; the local data is kept.
    Cancel(u64),
}

impl TasksArgs {
    /// The requested action, validated; `Ok(None)` = just list.
    pub fn parsed_action(&self) -> Result<Option<TaskAction>, String> {
        match self.action.as_slice() {
            [] => Ok(None),
            [verb, id] => {
                let id: u64 = id
                    .parse()
                    .map_err(|_| format!("task id must be a number, got '{id}'"))?;
                match verb.as_str() {
                    "pause" => Ok(Some(TaskAction::Pause(id))),
                    "restart" => Ok(Some(TaskAction::Restart(id))),
                    "cancel" => Ok(Some(TaskAction::Cancel(id))),
                    other => Err(format!(
                        "unknown tasks action '{other}' (use pause, restart or cancel)"
                    )),
                }
            }
            [verb] => Err(format!("'{verb}' needs a task id")),
            _ => Err("too many arguments".into()),
        }
    }
}

/// `cosfuse preflight MOUNTPOINT/PATH --origin O --method M [--headers H]`.
#[derive(Debug, Clone, Args)]
pub struct PreflightArgs {
    /// A path inside a running cosfuse mount.
    #[arg(value_name = "MOUNTPOINT/PATH")]
    pub path: PathBuf,
    /// The `Origin` of the would-be browser request.
    #[arg(long)]
    pub origin: String,
    /// The method the browser wants to use (GET, PUT, POST, DELETE, HEAD).
    #[arg(long)]
    pub method: String,
    /// Request headers the browser wants to send, comma separated.
    #[arg(long)]
    pub headers: Option<String>,
}

/// `cosfuse presign PATH [--method GET|PUT] [--expires S]`.
#[derive(Debug, Clone, Args)]
pub struct PresignArgs {
    /// A path inside a running cosfuse mount.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// GET (download) or PUT (upload).
    #[arg(long, default_value = "GET", value_parser = ["GET", "PUT", "get", "put"])]
    pub method: String,
    /// Seconds the URL stays valid.
    #[arg(long, default_value_t = 3600)]
    pub expires: u64,
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// Mount a bucket.
    Mount(Box<MountArgs>),
    /// Run a helper command.
    Tool(Tool),
}

/// Parses argv (including argv[0]); clap errors are returned for the caller to print and exit
/// with (code 2 for usage errors, 0 for --help/--version).
pub fn parse<I, T>(args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let first = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    if SUBCOMMANDS.contains(&first) {
        Ok(Invocation::Tool(ToolArgs::try_parse_from(args)?.command))
    } else {
        Ok(Invocation::Mount(Box::new(MountArgs::try_parse_from(
            args,
        )?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(args: &[&str]) -> MountArgs {
        match parse(std::iter::once("cosfuse").chain(args.iter().copied())).unwrap() {
            Invocation::Mount(m) => *m,
            other => panic!("expected mount, got {other:?}"),
        }
    }

    #[test]
    fn mount_form_with_repeated_o_and_flags() {
        let m = mount(&[
            "b-125",
            "/mnt",
            "-o",
            "url=http://127.0.0.1:1,ro",
            "-o",
            "allow_other",
            "-f",
            "-d",
        ]);
        assert_eq!(m.bucket, "b-125");
        assert_eq!(m.mountpoint, PathBuf::from("/mnt"));
        assert!(m.foreground && m.debug);
        assert_eq!(
            m.option_items(),
            vec!["url=http://127.0.0.1:1", "ro", "allow_other"]
        );
    }

    #[test]
    fn options_before_positionals_as_mount_fuse3_may_pass_them() {
        let m = mount(&["-o", "rw,_netdev", "b-1", "/mnt"]);
        assert_eq!(m.option_items(), vec!["rw", "_netdev"]);
    }

    #[test]
    fn long_flags_become_option_items() {
        let m = mount(&[
            "b-1",
            "/m",
            "--url",
            "http://h:1",
            "--region",
            "ap-guangzhou",
            "--passwd-file",
            "/p",
            "--allow-other",
            "--read-only",
            "--uid",
            "5",
            "--gid",
            "6",
            "--umask",
            "022",
            "--cache",
            "/c",
            "--attr-ttl",
            "1",
            "--neg-ttl",
            "2",
            "--part-size",
            "8M",
            "--parallel",
            "4",
            "--multipart-threshold",
            "16M",
            "--storage-class",
            "STANDARD_IA",
            "--acl",
            "private",
            "--presign-expires",
            "60",
            "--loglevel",
            "debug",
            "--logfile",
            "/l",
            "--cafile",
            "/ca.pem",
            "--vhost",
        ]);
        let items = m.option_items();
        for want in [
            "url=http://h:1",
            "region=ap-guangzhou",
            "passwd_file=/p",
            "uid=5",
            "gid=6",
            "umask=022",
            "cache=/c",
            "attr_ttl=1",
            "neg_ttl=2",
            "part_size=8M",
            "parallel=4",
            "multipart_threshold=16M",
            "storage_class=STANDARD_IA",
            "acl=private",
            "presign_expires=60",
            "loglevel=debug",
            "logfile=/l",
            "cafile=/ca.pem",
            "vhost",
            "allow_other",
            "ro",
        ] {
            assert!(items.iter().any(|i| i == want), "{want} missing: {items:?}");
        }
    }

    #[test]
    fn subcommands_are_dispatched_on_the_first_word() {
        let t = parse(["cosfuse", "tasks", "/mnt", "cancel", "7"]).unwrap();
        match t {
            Invocation::Tool(Tool::Tasks(a)) => {
                assert_eq!(a.parsed_action().unwrap(), Some(TaskAction::Cancel(7)))
            }
            other => panic!("{other:?}"),
        }
        let w = parse(["cosfuse", "tasks", "/mnt", "--watch"]).unwrap();
        assert!(matches!(w, Invocation::Tool(Tool::Tasks(ref a)) if a.watch));
        let p = parse([
            "cosfuse",
            "preflight",
            "/mnt/f",
            "--origin",
            "https://a",
            "--method",
            "PUT",
        ])
        .unwrap();
        assert!(matches!(p, Invocation::Tool(Tool::Preflight(ref a)) if a.method == "PUT"));
        let s = parse(["cosfuse", "presign", "/mnt/f", "--expires", "9"]).unwrap();
        assert!(matches!(s, Invocation::Tool(Tool::Presign(ref a)) if a.expires == 9));
    }

    #[test]
    fn bad_task_actions_are_explained() {
        let a = |v: &[&str]| TasksArgs {
            mountpoint: "/m".into(),
            watch: false,
            watch_limit: 1,
            action: v.iter().map(|s| s.to_string()).collect(),
        };
        assert!(a(&["pause"]).parsed_action().unwrap_err().contains("id"));
        assert!(a(&["stop", "1"])
            .parsed_action()
            .unwrap_err()
            .contains("stop"));
        assert!(a(&["pause", "x"])
            .parsed_action()
            .unwrap_err()
            .contains("'x'"));
        assert_eq!(a(&[]).parsed_action().unwrap(), None);
    }

    #[test]
    fn missing_mountpoint_is_a_usage_error() {
        let e = parse(["cosfuse", "b-1"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
