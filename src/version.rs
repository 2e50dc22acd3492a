//! What this binary is: its version and the git commit it was built from (see
//! `src/build.rs`).

/// The crate version from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The short git commit hash, or "unknown" when built outside a git checkout.
pub const COMMIT: &str = env!("HYGROCAST_COMMIT");

/// `0.1.0 (commit 1a2b3c4d5e)`, as `hygrocast --version` prints it.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HYGROCAST_COMMIT"),
    ")"
);
