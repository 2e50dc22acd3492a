//! Cargo build script (set as `package.build` in Cargo.toml; not part of the crate):
//! records the git commit the binary is built from, for `hygrocast --version`,
//! `/api/v1/info` and `hygrocast_build_info`.
//!
//! Falls back to "unknown" outside a git checkout (a source tarball, a Docker build
//! context without .git) rather than failing the build.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let commit = std::env::var("HYGROCAST_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=10", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=HYGROCAST_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=HYGROCAST_COMMIT");
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the branch it points at (a
    // commit). Worktrees keep HEAD in their own git dir and branches in the common one.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!(
            "cargo:rerun-if-changed={}",
            PathBuf::from(&dir).join("HEAD").display()
        );
    }
    if let (Some(common), Some(head_ref)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        let common = PathBuf::from(common);
        for path in [common.join(&head_ref), common.join("packed-refs")] {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
