//! Command line of `cosfuse` (clap), including the `-o a,b=c` mount-helper form.
