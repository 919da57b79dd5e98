//! docs/systemd.md and contrib/systemd/cosfuse@.service, checked against the real parsers:
//! the documented fstab line's options are all accepted by cosfuse's option parser, and the
//! unit's ExecStart (with its example configuration substituted) is a valid mount command.

use cosfuse::cli::{self, Invocation};
use cosfuse::config::options;

const DOC: &str = include_str!("../docs/systemd.md");
const UNIT: &str = include_str!("../contrib/systemd/cosfuse@.service");

/// The lines of the ```fstab blocks of the doc.
fn fstab_lines() -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in DOC.lines() {
        match line.trim() {
            "```fstab" => inside = true,
            "```" => inside = false,
            l if inside && !l.is_empty() && !l.starts_with('#') => out.push(l),
            _ => {}
        }
    }
    out
}

#[test]
fn the_documented_fstab_line_parses() {
    let lines = fstab_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let fields: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(fields.len(), 6, "{fields:?}");
    assert_eq!(fields[2], "fuse.cosfuse");
    let opts: Vec<&str> = fields[3].split(',').collect();
    for needed in ["x-systemd.automount", "_netdev"] {
        assert!(opts.contains(&needed), "fstab line lacks {needed}");
    }
    let parsed = options::parse_items(&opts);
    assert!(parsed.is_ok(), "{:?}", parsed.err());
    // What mount.fuse3 then runs must parse as a mount command too.
    let argv = ["cosfuse", fields[0], fields[1], "-o", fields[3]];
    assert!(matches!(cli::parse(argv), Ok(Invocation::Mount(_))));
    // An option cosfuse does not know is still refused: the check above can fail.
    assert!(options::parse_items(&["_netdev", "no_such_option"]).is_err());
}

#[test]
fn the_service_unit_runs_a_valid_mount_command() {
    let exec = UNIT
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let conf: Vec<(&str, &str)> = DOC
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| *k == "MOUNTPOINT" || *k == "OPTIONS")
        .collect();
    assert_eq!(conf.len(), 2, "{conf:?}");
    let mut cmd = exec.replace("%i", "photos-1250000000");
    for (k, v) in &conf {
        cmd = cmd.replace(&format!("${{{k}}}"), v);
    }
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    assert!(argv[0].ends_with("/cosfuse"), "{argv:?}");
    let Ok(Invocation::Mount(m)) = cli::parse(&argv) else {
        panic!("not a mount command: {argv:?}");
    };
    assert!(m.foreground, "the unit must keep cosfuse in the foreground");
    assert!(options::parse_items(&m.option_items()).is_ok());
    for key in [
        "[Unit]",
        "[Service]",
        "[Install]",
        "EnvironmentFile=/etc/cosfuse/%i.conf",
    ] {
        assert!(UNIT.contains(key), "{key}");
    }
}
