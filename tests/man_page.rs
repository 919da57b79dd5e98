//! The generated documentation (issue 13): `man/cosfuse.1`'s options part matches what
//! clap_mangen renders from the command-line definitions, and the hidden `completions`
//! command prints working bash/zsh/fish scripts that know the options.

use std::process::Command;

use cosfuse::docgen;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/man/cosfuse.1");

#[test]
fn man_page_options_match_the_cli() {
    let page = std::fs::read_to_string(PAGE).unwrap();
    let part =
        docgen::generated_part(&page).expect("man/cosfuse.1 lost its generated-part markers");
    let want = docgen::man_options();
    assert!(
        part == want,
        "man/cosfuse.1 disagrees with the CLI; run scripts/gen-man.sh\n--- page ---\n{part}\n--- cli ---\n{want}"
    );
    // Every visible long flag is documented in the page.
    let cmd = <cosfuse::cli::MountArgs as clap::CommandFactory>::command();
    let mut n = 0;
    for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if let Some(l) = a.get_long() {
            assert!(
                part.contains(&format!("\\-\\-{}", l.replace('-', "\\-"))),
                "--{l}"
            );
            n += 1;
        }
    }
    assert!(n > 15, "only {n} long flags");
}

#[test]
fn generate_man_rewrites_a_stale_page_to_the_committed_one() {
    let page = std::fs::read_to_string(PAGE).unwrap();
    let stale = docgen::splice_man(&page, ".SH OPTIONS\n.TP\nstale\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cosfuse.1");
    std::fs::write(&p, &stale).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cosfuse"))
        .arg("generate-man")
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), page);
}

#[test]
fn completions_generate_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(env!("CARGO_BIN_EXE_cosfuse"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["part-size", "passwd-file", "tasks", "presign"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        assert!(
            !script.contains("generate-man"),
            "{shell}: hidden command leaked"
        );
        // When the shell is installed, the script must at least parse.
        let check = match shell {
            "bash" => Some(("bash", vec!["-n"])),
            "zsh" => Some(("zsh", vec!["-n"])),
            "fish" => Some(("fish", vec!["--no-execute"])),
            _ => None,
        };
        if let Some((bin, flags)) = check {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("c");
            std::fs::write(&f, &script).unwrap();
            if let Ok(st) = Command::new(bin).args(&flags).arg(&f).status() {
                assert!(st.success(), "{shell} -n rejects its completion script");
            }
        }
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_cosfuse"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
