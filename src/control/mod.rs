//! Control channel of a running mount.
