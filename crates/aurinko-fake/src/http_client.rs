//! The fake's own HTTP client (webhook deliveries, tests), with ring as
//! rustls's provider as aurinko-sync installs it: reqwest is built without
//! a provider of its own.

/// A `reqwest` client builder, with ring installed as rustls's provider.
pub(crate) fn builder() -> reqwest::ClientBuilder {
    // Fails only when a provider is already installed, which serves.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
