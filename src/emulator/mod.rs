//! `cosfuse-emulator`: a local, file-backed COS-compatible endpoint.
