//! The maud page components of the web pages, and the stylesheet and favicon they use.
//!
//! These are pure functions from view data to HTML: no database, no request. The page
//! handlers in `src/web/pages/` gather the data and pick the component. Everything is
//! compiled into the binary, so a deployment is the one file.

pub mod chart;
pub mod dashboard;
pub mod format;
pub mod layout;
pub mod login;
pub mod models;
pub mod run;
pub mod sensor;

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{html, Markup};
use sha2::{Digest, Sha256};

/// The one stylesheet, served at `/static/style.css`.
pub const STYLE: &str = include_str!("style.css");
/// The favicon, served at `/favicon.svg`.
pub const FAVICON: &str = include_str!("favicon.svg");

/// A short digest of the stylesheet. Pages link `style.css?v=<digest>`, so the stylesheet
/// can be cached for a year and a new build is still fetched at once.
pub fn asset_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(STYLE.as_bytes());
        h.update(FAVICON.as_bytes());
        hex::encode(&h.finalize()[..6])
    })
}

/// What every page needs to know about the request it answers.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// `server.base_path` ("" or e.g. "/hygrocast"): prefixes every link, form and asset.
    pub base: String,
    /// `ui.timezone`: every time shown is converted to it.
    pub tz: Tz,
    /// The admin session, when logged in.
    pub admin: Option<Admin>,
    /// Whether an admin password is configured (the login link is shown only then).
    pub login_enabled: bool,
    /// When the request is answered: ages and the "now" marker are relative to it.
    pub now: DateTime<Utc>,
    /// `forecast.step_secs`: the grid the scores' horizon blocks count steps of.
    pub step_secs: i64,
}

/// A logged-in admin.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The session's CSRF token, a hidden field of every admin form.
    pub csrf: String,
}

impl Ctx {
    /// The label of the scores' block of horizons 1..=`last` on this server's grid.
    pub fn block(&self, last: usize) -> String {
        format::horizon_block(last, self.step_secs)
    }

    /// An absolute path under the base path: `url("/models")` → `/hygrocast/models`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The hidden CSRF field of an admin form (empty when not logged in).
    pub fn csrf_field(&self) -> Markup {
        html! {
            @if let Some(admin) = &self.admin {
                input type="hidden" name="csrf" value=(admin.csrf);
            }
        }
    }

    /// A one-button admin form (POST with the CSRF token), or nothing when not logged in.
    pub fn admin_button(&self, action: &str, label: &str, class: &str) -> Markup {
        html! {
            @if self.admin.is_some() {
                form.inline method="post" action=(self.url(action)) {
                    (self.csrf_field())
                    button.(class) type="submit" { (label) }
                }
            }
        }
    }
}
