//! The COS XML API client: signing, XML bodies, errors, retries, and `CosClient`.

pub mod error;
pub mod retry;
pub mod sign;
pub mod sigv4;
pub mod xml;
