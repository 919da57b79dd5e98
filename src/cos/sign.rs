//! COS request signing (placeholder until the signer lands).
