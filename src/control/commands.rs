//! `cosfuse tasks`, `cosfuse presign` and `cosfuse preflight`: resolve the mount through the
//! registry, send one request, print the result. Each returns the process exit code.

use std::path::Path;
use std::time::Duration;

use crate::cli::{PreflightArgs, PresignArgs, StatsArgs, TaskAction, TasksArgs};

use super::{client, registry, view, PreflightView, Request, Response};

fn fail(msg: &str) -> i32 {
    eprintln!("cosfuse: {msg}");
    1
}

fn send(socket: &Path, req: &Request) -> Result<Response, String> {
    let r = client::request(socket, req)?;
    if r.ok {
        Ok(r)
    } else {
        Err(r
            .error
            .unwrap_or_else(|| "the mount refused the request".into()))
    }
}

/// `cosfuse tasks MOUNTPOINT [--watch] [pause|restart|cancel ID]`.
pub fn tasks(args: &TasksArgs) -> i32 {
    let action = match args.parsed_action() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cosfuse tasks: {e}");
            return 2;
        }
    };
    let socket = match registry::socket_for(&registry::default_dir(), &args.mountpoint) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if let Some(a) = action {
        let req = match a {
            TaskAction::Pause(id) => Request::Pause { id },
            TaskAction::Restart(id) => Request::Restart { id },
            TaskAction::Cancel(id) => Request::Cancel { id },
        };
        return match send(&socket, &req) {
            Ok(r) => {
                println!("{}", r.message.unwrap_or_else(|| "done".into()));
                0
            }
            Err(e) => fail(&e),
        };
    }
    let list = || send(&socket, &Request::List).map(|r| r.tasks);
    let result = if args.watch {
        view::watch(
            list,
            Duration::from_millis(250),
            Duration::from_secs(args.watch_limit),
        )
    } else {
        list()
    };
    match result {
        Ok(tasks) => {
            print!("{}", view::table(&tasks));
            0
        }
        Err(e) => fail(&e),
    }
}

/// `cosfuse presign PATH [--method GET|PUT] [--expires S]`.
pub fn presign(args: &PresignArgs) -> i32 {
    let (entry, rel) = match registry::lookup(&registry::default_dir(), &args.path) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    if rel.is_empty() {
        return fail("give a file inside the mount, not the mount point");
    }
    let req = Request::Presign {
        path: rel,
        method: args.method.to_ascii_uppercase(),
        expires: args.expires,
    };
    match send(&entry.socket, &req) {
        Ok(r) => match r.url {
            Some(url) => {
                println!("{url}");
                0
            }
            None => fail("the mount returned no URL"),
        },
        Err(e) => fail(&e),
    }
}

/// `cosfuse stats MOUNTPOINT [--json]`: the mount's counters.
pub fn stats(args: &StatsArgs) -> i32 {
    let socket = match registry::socket_for(&registry::default_dir(), &args.mountpoint) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let s = match send(&socket, &Request::Stats) {
        Ok(Response { stats: Some(s), .. }) => s,
        Ok(r) => {
            return fail(
                r.error
                    .as_deref()
                    .unwrap_or("the mount returned no counters"),
            )
        }
        Err(e) => return fail(&e),
    };
    if args.json {
        match serde_json::to_string(&s) {
            Ok(j) => println!("{j}"),
            Err(e) => return fail(&e.to_string()),
        }
        return 0;
    }
    print!("{}", view::stats_text(&s));
    0
}

/// Formats a preflight answer for the terminal.
pub fn preflight_text(p: &PreflightView) -> String {
    if !p.allowed {
        return format!(
            "refused: {}\n",
            p.message
                .as_deref()
                .unwrap_or("the bucket's CORS rules do not allow this request")
        );
    }
    let mut out = String::from("allowed\n");
    let mut line = |name: &str, v: &Option<String>| {
        if let Some(v) = v {
            out.push_str(&format!("{name}: {v}\n"));
        }
    };
    line("Access-Control-Allow-Origin", &p.allow_origin);
    line("Access-Control-Allow-Methods", &p.allow_methods);
    line("Access-Control-Allow-Headers", &p.allow_headers);
    line("Access-Control-Expose-Headers", &p.expose_headers);
    line("Access-Control-Max-Age", &p.max_age.map(|m| m.to_string()));
    out
}

/// `cosfuse preflight MOUNTPOINT/PATH --origin O --method M [--headers H]`.
pub fn preflight(args: &PreflightArgs) -> i32 {
    let (entry, rel) = match registry::lookup(&registry::default_dir(), &args.path) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let req = Request::Preflight {
        path: rel,
        origin: args.origin.clone(),
        method: args.method.to_ascii_uppercase(),
        headers: args.headers.clone(),
    };
    match send(&entry.socket, &req) {
        Ok(r) => match r.preflight {
            Some(p) => {
                print!("{}", preflight_text(&p));
                // A refusal is an answer, not a failure of the command; scripts read the text.
                if p.allowed {
                    0
                } else {
                    3
                }
            }
            None => fail("the mount returned no preflight answer"),
        },
        Err(e) => fail(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_text_forms() {
        let p = PreflightView {
            allowed: true,
            allow_origin: Some("https://a".into()),
            allow_methods: Some("GET,PUT".into()),
            max_age: Some(600),
            ..Default::default()
        };
        let t = preflight_text(&p);
        assert!(t.starts_with("allowed\n"));
        assert!(t.contains("Access-Control-Allow-Methods: GET,PUT"));
        assert!(t.contains("Access-Control-Max-Age: 600"));
        let r = PreflightView {
            message: Some("CORSResponse: This CORS request is not allowed.".into()),
            ..Default::default()
        };
        assert!(preflight_text(&r).starts_with("refused: CORSResponse"));
    }
}
