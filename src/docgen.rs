//! Documentation generated from the clap definitions (issue 13), so the manual and the shell
//! completions cannot drift from `--help`.
//!
//! - The options part of `man/cosfuse.1` lies between [`MAN_BEGIN`] and [`MAN_END`] and is
//!   rendered by clap_mangen from [`MountArgs`]; the prose around it is hand-written. `cosfuse
//!   generate-man FILE` (hidden) prints FILE with that part re-rendered, which
//!   `scripts/gen-man.sh` writes back; `tests/man_page.rs` fails when the two differ.
//! - `cosfuse completions bash|zsh|fish` (hidden) prints a completion script (clap_complete)
//!   for the mount form and the helper subcommands; `scripts/install.sh` installs them.

use clap::CommandFactory;

use crate::cli::{MountArgs, ToolArgs};

/// Roff comment line that opens the generated part of `man/cosfuse.1`.
pub const MAN_BEGIN: &str =
    ".\\\" BEGIN GENERATED OPTIONS (scripts/gen-man.sh; edit the doc comments in src/cli.rs)";
/// Roff comment line that closes it.
pub const MAN_END: &str = ".\\\" END GENERATED OPTIONS";

/// The OPTIONS sections (one per help heading) of the mount form, as roff.
pub fn man_options() -> String {
    let man = clap_mangen::Man::new(MountArgs::command());
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_options_section(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `page` with the text between its [`MAN_BEGIN`] and [`MAN_END`] lines replaced by
/// `generated`; an error when the markers are missing or out of order.
pub fn splice_man(page: &str, generated: &str) -> Result<String, String> {
    let begin = page
        .find(MAN_BEGIN)
        .ok_or_else(|| format!("no line {MAN_BEGIN:?}"))?;
    let after_begin = begin + MAN_BEGIN.len();
    let end = page[after_begin..]
        .find(MAN_END)
        .map(|i| after_begin + i)
        .ok_or_else(|| format!("no line {MAN_END:?} after the begin marker"))?;
    let mut body = generated.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    Ok(format!("{}\n{body}{}", &page[..after_begin], &page[end..]))
}

/// The generated part of `page` (between the markers), when it has the markers.
pub fn generated_part(page: &str) -> Option<&str> {
    let start = page.find(MAN_BEGIN)? + MAN_BEGIN.len();
    let end = start + page[start..].find(MAN_END)?;
    Some(page[start..end].trim_start_matches('\n'))
}

/// The command completions describe: the mount form's flags and positionals plus the helper
/// subcommands (which `cli::parse` dispatches on the first word).
pub fn completion_command() -> clap::Command {
    let mut cmd = MountArgs::command();
    for sub in ToolArgs::command().get_subcommands() {
        if !sub.is_hide_set() {
            cmd = cmd.subcommand(sub.clone());
        }
    }
    cmd.subcommand_negates_reqs(true)
}

/// A completion script for `shell` (bash, zsh, fish, ...).
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = completion_command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "cosfuse", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_the_marked_part() {
        let page = format!("head\n{MAN_BEGIN}\nold\n{MAN_END}\ntail\n");
        let new = splice_man(&page, "new").unwrap();
        assert_eq!(new, format!("head\n{MAN_BEGIN}\nnew\n{MAN_END}\ntail\n"));
        assert_eq!(generated_part(&new), Some("new\n"));
        assert!(splice_man("no markers", "x").is_err());
    }

    #[test]
    fn man_options_name_the_long_flags() {
        let m = man_options();
        assert!(m.contains("part\\-size"), "{m}");
        assert!(m.contains(".SH OPTIONS"), "{m}");
    }
}
