//! See `peers/mod.rs`.
