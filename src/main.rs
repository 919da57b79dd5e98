//! `cosfuse`: mount a COS bucket (or run a helper subcommand). Everything lives in `run`.

fn main() {
    std::process::exit(cosfuse::run::main(std::env::args_os().collect()));
}
