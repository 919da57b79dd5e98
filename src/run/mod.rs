//! Wiring: store + fs + adapter + mount + signals + clean unmount and queue drain.
