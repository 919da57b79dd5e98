//! Tests of the upload queue against `MemoryStore`.
