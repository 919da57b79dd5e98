//! Typed, validated configuration and credentials (with a redacting `Debug`).
