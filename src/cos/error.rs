//! `CosError`: one failed COS request, as COS described it (status, code, message, request and
//! trace ids, resource), built from an `<Error>` body, from a body-less HEAD/304 answer, from an
//! `<Error>` delivered inside an HTTP 200 (copy, upload part copy, complete), or synthesised for
//! failures on our side (connection, unparsable answer, checksum mismatch).
//!
//! `From<CosError> for StoreError` is the one place COS codes become store errors; it follows
//! docs/protocol.md §5.2 row by row, with the hard cases commented.

use std::fmt;

use reqwest::header::HeaderMap;

use super::xml;
use crate::store::StoreError;

/// Synthetic code: the request never got an HTTP answer (connect, reset, timeout, TLS).
pub const CODE_NETWORK: &str = "ClientNetworkError";
/// Synthetic code: the connection could not even be established (safe to retry anything).
pub const CODE_CONNECT: &str = "ClientConnectError";
/// Synthetic code: the TLS handshake failed (certificate not trusted, wrong host name, ...);
/// never retried, since sending again meets the same certificate.
pub const CODE_TLS: &str = "ClientTlsError";
/// Synthetic code: an answer we could not understand (bad XML, missing header).
pub const CODE_PROTOCOL: &str = "ClientProtocolError";
/// Synthetic code: the returned Content-MD5/ETag or CRC64 does not match what we sent.
pub const CODE_CHECKSUM: &str = "ClientChecksumMismatch";
/// Synthetic code: a local file could not be read (multipart upload source).
pub const CODE_LOCAL_IO: &str = "ClientLocalIoError";
/// Synthetic code: no usable credentials (the provider failed, e.g. an unreadable passwd file).
pub const CODE_CREDENTIALS: &str = "ClientCredentialsError";
/// Synthetic code of a 304 answer (no body): the conditional request says "not modified".
pub const CODE_NOT_MODIFIED: &str = "NotModified";

/// A failed COS request.
#[derive(Clone, PartialEq, Eq)]
pub struct CosError {
    /// HTTP status; 0 when no HTTP answer was received.
    pub status: u16,
    /// COS error code (`NoSuchKey`, ...) or one of the `CODE_*` synthetic codes.
    pub code: String,
    /// COS error message.
    pub message: String,
    /// `x-cos-request-id` (header, else body `RequestId`); empty when unknown.
    pub request_id: String,
    /// `x-cos-trace-id` (header, else body `TraceId`); empty when unknown.
    pub trace_id: String,
    /// `Resource` of the error body; empty when unknown.
    pub resource: String,
    /// The server's HttpString (`FormatString`) of a SignatureDoesNotMatch, for debugging.
    pub format_string: Option<String>,
    /// True when the answer carried `x-cos-restore: ongoing-request="true"` (archived object
    /// being restored): decides EAGAIN vs EACCES for InvalidObjectState.
    pub restore_ongoing: bool,
    /// The response `Date`, used to resync the clock after "Request has expired".
    pub server_date: Option<std::time::SystemTime>,
}

impl fmt::Debug for CosError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Manual so the output stays on one line in logs; nothing here is secret.
        write!(
            f,
            "CosError({} {}: {} [request {}, trace {}, resource {}])",
            self.status, self.code, self.message, self.request_id, self.trace_id, self.resource
        )
    }
}

impl fmt::Display for CosError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "COS {} {}: {}", self.status, self.code, self.message)?;
        if !self.request_id.is_empty() {
            write!(f, " (request id {})", self.request_id)?;
        }
        Ok(())
    }
}

impl std::error::Error for CosError {}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Code COS would have sent for a body-less error answer (HEAD, 304), by status.
fn code_for_status(status: u16) -> &'static str {
    match status {
        304 => CODE_NOT_MODIFIED,
        400 => "InvalidRequest",
        403 => "AccessDenied",
        // The Python SDK synthesises NoSuchResource for a HEAD 404 (§4.4).
        404 => "NoSuchResource",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        412 => "PreconditionFailed",
        416 => "InvalidRange",
        501 => "NotImplemented",
        503 => "ServiceUnavailable",
        s if s >= 500 => "InternalError",
        _ => "UnknownError",
    }
}

impl CosError {
    /// An error of our own making (no COS answer, or one we could not use).
    pub fn client(status: u16, code: &str, message: impl Into<String>) -> CosError {
        CosError {
            status,
            code: code.to_string(),
            message: message.into(),
            request_id: String::new(),
            trace_id: String::new(),
            resource: String::new(),
            format_string: None,
            restore_ongoing: false,
            server_date: None,
        }
    }

    /// Builds the error of a non-2xx answer (or of a 200 whose body is `<Error>`): the body's
    /// fields when it is an `<Error>` document, otherwise the status alone (HEAD has no body).
    pub fn from_response(status: u16, headers: &HeaderMap, body: &[u8]) -> CosError {
        let text = String::from_utf8_lossy(body);
        let parsed: Option<xml::ErrorBody> = if xml::root_name(&text) == Some("Error") {
            xml::parse(&text).ok()
        } else {
            None
        };
        let mut e = match parsed {
            Some(b) => CosError {
                status,
                code: if b.code.is_empty() {
                    code_for_status(status).to_string()
                } else {
                    b.code
                },
                message: b.message,
                request_id: b.request_id.unwrap_or_default(),
                trace_id: b.trace_id.unwrap_or_default(),
                resource: b.resource.unwrap_or_default(),
                format_string: b.format_string,
                restore_ongoing: false,
                server_date: None,
            },
            None => CosError::client(status, code_for_status(status), ""),
        };
        // Headers win over the body for ids: they are present on HEAD errors too.
        let rid = header(headers, "x-cos-request-id");
        if !rid.is_empty() {
            e.request_id = rid;
        }
        let tid = header(headers, "x-cos-trace-id");
        if !tid.is_empty() {
            e.trace_id = tid;
        }
        e.restore_ongoing = header(headers, "x-cos-restore").contains("ongoing-request=\"true\"");
        e.server_date = httpdate::parse_http_date(&header(headers, "date")).ok();
        e
    }

    /// For answers that may carry an error inside HTTP 200 (copy, upload part copy, complete):
    /// `Some(error)` when the body's root element is `<Error>`.
    pub fn from_200_body(headers: &HeaderMap, body: &[u8]) -> Option<CosError> {
        let text = String::from_utf8_lossy(body);
        (xml::root_name(&text) == Some("Error"))
            .then(|| CosError::from_response(200, headers, body))
    }

    /// True for `AccessDenied / Request has expired` and `RequestTimeTooSkewed`: the local clock
    /// is off; resync from the response `Date` and retry once.
    pub fn is_clock_skew(&self) -> bool {
        (self.status == 403 && self.code == "AccessDenied" && self.message == "Request has expired")
            || self.code == "RequestTimeTooSkewed"
    }
}

impl From<CosError> for StoreError {
    /// COS code → store error, following docs/protocol.md §5.2 (errno noted per row, applied by
    /// the fs core). Unknown codes fall back on the HTTP status class.
    fn from(e: CosError) -> StoreError {
        let denied = |e: CosError| StoreError::AccessDenied {
            code: e.code,
            message: e.message,
        };
        let invalid = |e: CosError| StoreError::InvalidRequest {
            code: e.code,
            message: e.message,
        };
        let conflict = |e: CosError| StoreError::Conflict {
            code: e.code,
            message: e.message,
        };
        let unavailable = |e: CosError| StoreError::Unavailable {
            status: e.status,
            code: e.code,
            message: e.message,
            request_id: e.request_id,
        };
        match e.code.as_str() {
            // Our own failures.
            CODE_NETWORK | CODE_CONNECT | CODE_TLS => StoreError::Network(e.message),
            CODE_PROTOCOL | CODE_CHECKSUM => StoreError::Protocol(format!("{e}")),
            CODE_LOCAL_IO => StoreError::Io(e.message),
            // No credentials to sign with → EACCES, with the provider's reason.
            CODE_CREDENTIALS => denied(e),
            // 304: the cached copy is still valid; callers that asked conditionally handle it,
            // everyone else sees a failed precondition.
            CODE_NOT_MODIFIED => StoreError::PreconditionFailed("not modified".into()),
            // 400 BadDigest / InvalidDigest: the body was damaged or the MD5 malformed — after
            // the caller's one retry it is an I/O failure (EIO), not a user error.
            "BadDigest" | "InvalidDigest" | "InvalidSHA1Digest" => {
                StoreError::Protocol(format!("{e}"))
            }
            // 400 EntityTooLarge: > 5 GB single PUT/copy → EFBIG (callers switch to multipart).
            "EntityTooLarge" => StoreError::TooLarge(e.message),
            // Client bugs in the multipart protocol → EIO.
            "EntityTooSmall"
            | "InvalidPart"
            | "InvalidPartOrder"
            | "MissingContentLength"
            | "ObjectNotAppendable"
            | "AppendPositionErr" => StoreError::Protocol(format!("{e}")),
            // 400 KeyTooLong / InvalidObjectName → ENAMETOOLONG / EINVAL.
            "KeyTooLong" => StoreError::KeyTooLong(e.message),
            "InvalidObjectName" => StoreError::InvalidName(e.message),
            // 400 RequestTimeout / IncompleteBody / EntitySizeNotMatch: the body did not arrive;
            // transient (retry later), else EIO.
            "RequestTimeout" | "IncompleteBody" | "EntitySizeNotMatch" | "UserNetworkTooSlow" => {
                unavailable(e)
            }
            // 400 ExpiredToken: STS credentials must be refreshed → EACCES until they are.
            "ExpiredToken" => denied(e),
            // 402 / 403 / 451: permission problems → EACCES. "Request has expired" is
            // AccessDenied too; the client already resynced its clock and retried once.
            "PaymentRequired"
            | "AccessDenied"
            | "AccessForbidden"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "RequestTimeTooSkewed"
            | "UnavailableForLegalReasons"
            | "PathStyleDomainForbidden"
            | "DownloadForbidden"
            | "NoProcessAuthority"
            | "UserNotSourceBucketOwner"
            | "UserNotTargetBucketOwner" => denied(e),
            // ObjectLocked (409): the object may not be changed → EPERM-like; AccessDenied is the
            // nearest store class (the fs core sees code "ObjectLocked").
            "ObjectLocked" => denied(e),
            // InvalidObjectState: 403 = unrestored ARCHIVE/DEEP_ARCHIVE (EAGAIN while a restore
            // runs, EACCES otherwise); 409 = another state conflict (EAGAIN).
            "InvalidObjectState" if e.status == 403 => StoreError::Archived {
                restoring: e.restore_ongoing,
            },
            "InvalidObjectState" => conflict(e),
            // 404s.
            "NoSuchBucket" => StoreError::NoSuchBucket(e.message),
            "NoSuchKey"
            | "NoSuchUpload"
            | "NoSuchVersion"
            | "NoSuchCopySource"
            | "NoSuchResource"
            | "NoSuchCORSConfiguration"
            | "NoSuchLifecycleConfiguration"
            | "NoSuchTagSet"
            | "NoSuchWebsiteConfiguration" => StoreError::NotFound(if e.resource.is_empty() {
                e.code
            } else {
                e.resource
            }),
            // 405 / 501 → ENOTSUP.
            "MethodNotAllowed" | "NotImplemented" | "UploadIdNotSupported" => {
                StoreError::NotSupported(format!("{}: {}", e.code, e.message))
            }
            // Restore outcomes are turned into RestoreOutcome by restore_object before this
            // mapping; seen elsewhere they are a conflict / an invalid request.
            "RestoreAlreadyInProgress" => conflict(e),
            "RestoreNonArchiveObject" => invalid(e),
            // 409 concurrent writes → retry with backoff, else EBUSY.
            "PathConflict"
            | "UploadConflict"
            | "BucketNotEmpty"
            | "InvalidBucketState"
            | "BucketAlreadyExists"
            | "BucketAlreadyOwnedByYou" => conflict(e),
            // 412 (and the copy-source conditions) → ESTALE, invalidate caches.
            "PreconditionFailed" => StoreError::PreconditionFailed(e.message),
            // 416: readers turn it into EOF before mapping; anywhere else it is a bad request.
            "InvalidRange" => invalid(e),
            // 5xx and throttling that survived the retry budget → EAGAIN/EIO.
            "InternalError"
            | "ServiceUnavailable"
            | "SlowDown"
            | "KmsInternalException"
            | "KmsFreqControl" => unavailable(e),
            // 400 bad requests → EINVAL (logged by the fs core).
            "InvalidArgument"
            | "InvalidRequest"
            | "MalformedXML"
            | "InvalidURI"
            | "InvalidDelimiter"
            | "InvalidCopySource"
            | "InvalidTag"
            | "MalformedPOSTRequest"
            | "MalformedPolicy"
            | "InvalidPolicyDocument"
            | "IncorrectNumberOfFilesInPostRequest"
            | "NotSupportedStorageClass"
            | "XMLSizeLimit"
            | "MissingRequestBodyError"
            | "ListPartUploadIdIsEmpty"
            | "BadRquest" => invalid(e),
            // Anything else: by status class.
            _ => match e.status {
                0 => StoreError::Network(e.message),
                403 | 401 | 402 | 451 => denied(e),
                404 => StoreError::NotFound(e.code),
                405 | 501 => StoreError::NotSupported(format!("{}: {}", e.code, e.message)),
                409 => conflict(e),
                412 => StoreError::PreconditionFailed(e.message),
                s if s >= 500 => unavailable(e),
                _ => invalid(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn sample(name: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/xml-samples/");
        std::fs::read(format!("{dir}{name}")).expect("sample readable")
    }

    fn err(status: u16, name: &str) -> CosError {
        CosError::from_response(status, &HeaderMap::new(), &sample(name))
    }

    #[test]
    fn error_bodies_parse_with_all_fields() {
        let e = err(404, "error-nosuchkey.xml");
        assert_eq!(e.status, 404);
        assert_eq!(e.code, "NoSuchKey");
        assert_eq!(e.message, "The specified key does not exist.");
        assert_eq!(e.request_id, "NjVmMDAwMDBfZXJyb3JzYW1wbGU=");
        assert!(e.trace_id.starts_with("OGVmYzZiMmQz"));
        assert_eq!(
            e.resource,
            "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/missing.txt"
        );
        let s = err(403, "error-signature-does-not-match.xml");
        assert!(s.format_string.unwrap().contains("host=examplebucket"));
    }

    #[test]
    fn error_inside_200_is_detected() {
        let h = HeaderMap::new();
        let e = CosError::from_200_body(&h, &sample("error-in-200-copy-response.xml"))
            .expect("200 with Error is an error");
        assert_eq!((e.status, e.code.as_str()), (200, "InternalError"));
        assert_eq!(e.request_id, "NjVmMDAwMDBfY29weWVycm9y");
        assert!(CosError::from_200_body(&h, &sample("response-copy-object.xml")).is_none());
        let padded = [b"  \n ".as_slice(), &sample("error-slowdown.xml")].concat();
        assert_eq!(
            CosError::from_200_body(&h, &padded).unwrap().code,
            "SlowDown"
        );
    }

    #[test]
    fn head_errors_without_body_use_status_and_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-cos-request-id", HeaderValue::from_static("rid-1"));
        h.insert("x-cos-trace-id", HeaderValue::from_static("tid-1"));
        h.insert(
            "date",
            HeaderValue::from_static("Fri, 10 Apr 2020 18:17:25 GMT"),
        );
        let e = CosError::from_response(404, &h, b"");
        assert_eq!(e.code, "NoSuchResource");
        assert_eq!(
            (e.request_id.as_str(), e.trace_id.as_str()),
            ("rid-1", "tid-1")
        );
        assert!(e.server_date.is_some());
        assert!(matches!(StoreError::from(e), StoreError::NotFound(_)));
        let e = CosError::from_response(304, &h, b"");
        assert_eq!(e.code, CODE_NOT_MODIFIED);
        assert!(matches!(
            StoreError::from(e),
            StoreError::PreconditionFailed(_)
        ));
    }

    #[test]
    fn clock_skew_is_recognised() {
        assert!(err(403, "error-request-has-expired.xml").is_clock_skew());
        assert!(!err(403, "error-signature-does-not-match.xml").is_clock_skew());
        assert!(CosError::client(403, "RequestTimeTooSkewed", "").is_clock_skew());
    }

    #[test]
    fn store_error_mapping_follows_the_table() {
        let m = |status: u16, code: &str| StoreError::from(CosError::client(status, code, "m"));
        assert!(matches!(m(404, "NoSuchKey"), StoreError::NotFound(_)));
        assert!(matches!(m(404, "NoSuchUpload"), StoreError::NotFound(_)));
        assert!(matches!(
            m(404, "NoSuchBucket"),
            StoreError::NoSuchBucket(_)
        ));
        assert!(matches!(
            m(412, "PreconditionFailed"),
            StoreError::PreconditionFailed(_)
        ));
        assert!(matches!(m(400, "EntityTooLarge"), StoreError::TooLarge(_)));
        assert!(matches!(m(400, "KeyTooLong"), StoreError::KeyTooLong(_)));
        assert!(matches!(
            m(400, "InvalidObjectName"),
            StoreError::InvalidName(_)
        ));
        assert!(matches!(
            m(400, "MalformedXML"),
            StoreError::InvalidRequest { .. }
        ));
        assert!(matches!(m(400, "InvalidPart"), StoreError::Protocol(_)));
        assert!(matches!(m(400, "BadDigest"), StoreError::Protocol(_)));
        assert!(matches!(
            m(403, "SignatureDoesNotMatch"),
            StoreError::AccessDenied { .. }
        ));
        assert!(matches!(
            m(403, "InvalidAccessKeyId"),
            StoreError::AccessDenied { .. }
        ));
        assert!(matches!(
            m(400, "ExpiredToken"),
            StoreError::AccessDenied { .. }
        ));
        assert!(matches!(
            m(409, "PathConflict"),
            StoreError::Conflict { .. }
        ));
        assert!(matches!(
            m(409, "InvalidObjectState"),
            StoreError::Conflict { .. }
        ));
        assert!(matches!(
            m(405, "MethodNotAllowed"),
            StoreError::NotSupported(_)
        ));
        assert!(matches!(
            m(501, "NotImplemented"),
            StoreError::NotSupported(_)
        ));
        assert!(matches!(
            m(503, "SlowDown"),
            StoreError::Unavailable { status: 503, .. }
        ));
        assert!(matches!(
            m(500, "InternalError"),
            StoreError::Unavailable { .. }
        ));
        assert!(matches!(m(0, CODE_NETWORK), StoreError::Network(_)));
        assert!(matches!(m(200, CODE_CHECKSUM), StoreError::Protocol(_)));
        // Unknown codes fall back on the status class.
        assert!(matches!(m(502, "Whatever"), StoreError::Unavailable { .. }));
        assert!(matches!(
            m(403, "Whatever"),
            StoreError::AccessDenied { .. }
        ));
        assert!(matches!(
            m(418, "Whatever"),
            StoreError::InvalidRequest { .. }
        ));
    }

    #[test]
    fn archived_object_reports_restore_in_progress() {
        let mut h = HeaderMap::new();
        let body = sample("error-invalidobjectstate.xml");
        let e = CosError::from_response(403, &h, &body);
        assert!(matches!(
            StoreError::from(e),
            StoreError::Archived { restoring: false }
        ));
        h.insert(
            "x-cos-restore",
            HeaderValue::from_static("ongoing-request=\"true\""),
        );
        let e = CosError::from_response(403, &h, &body);
        assert!(matches!(
            StoreError::from(e),
            StoreError::Archived { restoring: true }
        ));
    }
}
