//! `StoreError`: what can go wrong at the storage boundary, classified for the fs core.
//!
//! The client maps COS error codes onto these variants (see `cos::error`); the fs core maps
//! them onto errnos. Each variant keeps the COS code and message where there is one, so a log
//! line can always name what COS said.

/// A failed store operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// 404 NoSuchKey / NoSuchUpload / NoSuchCopySource, or a HEAD 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// 404 NoSuchBucket: the bucket does not exist.
    #[error("bucket does not exist: {0}")]
    NoSuchBucket(String),
    /// 412 PreconditionFailed / 304 on a conditional request.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// 403 InvalidObjectState: archived object not restored (`restoring`: a restore is running).
    #[error("object is archived and not restored{}", if *.restoring { " (restore in progress)" } else { "" })]
    Archived {
        /// True when `x-cos-restore: ongoing-request="true"` was seen.
        restoring: bool,
    },
    /// 403 AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, RequestTimeTooSkewed, ...
    #[error("access denied: {code}: {message}")]
    AccessDenied {
        /// COS error code.
        code: String,
        /// COS error message.
        message: String,
    },
    /// InvalidObjectName: COS refuses the key's characters.
    #[error("invalid object name: {0}")]
    InvalidName(String),
    /// KeyTooLong: the key is longer than COS allows.
    #[error("object key too long: {0}")]
    KeyTooLong(String),
    /// EntityTooLarge.
    #[error("entity too large: {0}")]
    TooLarge(String),
    /// Other 4xx: the request was wrong (InvalidArgument, MalformedXML, InvalidRequest, ...).
    #[error("invalid request: {code}: {message}")]
    InvalidRequest {
        /// COS error code.
        code: String,
        /// COS error message.
        message: String,
    },
    /// 409 conflicts (PathConflict, UploadConflict, InvalidObjectState as 409).
    #[error("conflict: {code}: {message}")]
    Conflict {
        /// COS error code.
        code: String,
        /// COS error message.
        message: String,
    },
    /// 405/501: the operation is not supported by this endpoint.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// 5xx or SlowDown that survived the retry budget.
    #[error("service unavailable: {status} {code}: {message} (request id {request_id})")]
    Unavailable {
        /// HTTP status.
        status: u16,
        /// COS error code.
        code: String,
        /// COS error message.
        message: String,
        /// `x-cos-request-id`.
        request_id: String,
    },
    /// Connection refused, reset, timed out, TLS failure (after retries).
    #[error("network error: {0}")]
    Network(String),
    /// A response that could not be understood (bad XML, missing headers).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Local I/O failed (staging files, cache directory).
    #[error("local I/O error: {0}")]
    Io(String),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

impl StoreError {
    /// True for errors a caller may retry later (throttling, 5xx, network).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Network(_)
        )
    }
}
