//! HTTP clients (the Aurinko client, the fake's webhook deliveries, tests)
//! start here, so rustls has its crypto provider before the first one is
//! built.
//!
//! reqwest is built without a provider of its own (`rustls-no-provider`):
//! its default, aws-lc-rs, needs cmake and a long C build. ring, installed
//! here as the process's default, needs only a C compiler.

/// A `reqwest` client builder, with ring installed as rustls's provider.
pub fn builder() -> reqwest::ClientBuilder {
    // `install_default` fails only when a provider is already installed:
    // by an earlier call, or by whoever embeds us. Either serves.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
