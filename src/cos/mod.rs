//! The COS XML API client: signing, XML bodies, errors, retries, and `CosClient`.
//!
//! - `sign`, `sigv4`: the two signature algorithms (pure).
//! - `request`: one request as data and what of it gets signed.
//! - `client`: `CosClient`, the HTTP engine with retries and clock resync.
//! - `objects`, `multipart`, `transfer`, `presign`: the operations, as `impl CosClient` blocks.
//! - `store_impl`: `impl ObjectStore for CosClient`.
//! - `xml`, `error`, `retry`, `config`: bodies, errors, retry policy, configuration.
//! - `tls`: trusted CAs (system roots plus `cafile=`), name overrides, certificate errors.

// CosError carries everything COS said (ids, resource, server date); it travels once per failed
// network request, so its size is irrelevant next to the request itself.
#![allow(clippy::result_large_err)]
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod error;
pub mod headers;
pub mod multipart;
pub mod objects;
pub mod presign;
pub mod request;
pub mod retry;
pub mod sign;
pub mod sigv4;
pub mod store_impl;
pub mod tls;
pub mod transfer;
pub mod types;
pub mod xml;

pub use client::CosClient;
pub use config::{CosConfig, CosCredentials, SigningScheme};
pub use error::CosError;
pub use retry::RetryPolicy;
