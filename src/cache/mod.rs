//! Metadata cache, staging files with their crash journal, and the upload queue.
