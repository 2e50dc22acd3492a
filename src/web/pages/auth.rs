//! The admin login of the pages: password check (argon2), server-side sessions in the
//! `admin_sessions` table (so a login holds on every replica), the session cookie, and
//! the CSRF tokens of the forms.
//!
//! - The session cookie carries a random 256-bit token; the table stores its SHA-256,
//!   so a database dump does not hand out sessions. HttpOnly, SameSite=Strict, Path =
//!   the base path, Secure when `ui.secure_cookies`.
//! - Each session has its own random CSRF token, a hidden field of every admin form and
//!   compared in constant time on every admin POST.
//! - The login form itself is protected by a double-submit token (a short-lived cookie
//!   that must equal the form field), since there is no session yet.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::HttpRequest;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use deadpool_postgres::Pool;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::PageError;
use crate::config::Settings;
use crate::templates::Admin;

pub const SESSION_COOKIE: &str = "hygrocast_session";
pub const LOGIN_COOKIE: &str = "hygrocast_login";
/// How long an admin session lasts.
pub const SESSION_HOURS: i64 = 12;
/// How long a login form stays valid.
const LOGIN_FORM_MINUTES: i64 = 30;

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Constant-time comparison of two tokens.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The Argon2id hash (PHC string) of a password, for `ui.admin_password_hash`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC `hash` (false for an unparsable hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// The admin session of a request, if its cookie names a live one.
pub async fn session(pool: &Pool, req: &HttpRequest) -> Result<Option<Admin>, PageError> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let token = cookie.value();
    // Our tokens are 64 hex digits; anything else cannot be a session.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT csrf FROM admin_sessions WHERE token_hash = $1 AND expires_at > now()",
            &[&token_hash(token)],
        )
        .await?;
    Ok(row.map(|r| Admin { csrf: r.get(0) }))
}

/// Starts a session; returns its cookie token.
pub async fn create_session(pool: &Pool) -> Result<String, PageError> {
    let token = random_token();
    let csrf = random_token();
    let client = pool.get().await?;
    // Expired sessions are removed here, on the rare path, not on every request.
    client
        .execute("DELETE FROM admin_sessions WHERE expires_at < now()", &[])
        .await?;
    client
        .execute(
            "INSERT INTO admin_sessions (token_hash, csrf, expires_at) \
             VALUES ($1, $2, now() + make_interval(hours => $3))",
            &[&token_hash(&token), &csrf, &(SESSION_HOURS as i32)],
        )
        .await?;
    Ok(token)
}

/// Ends the session the request carries (if any).
pub async fn end_session(pool: &Pool, req: &HttpRequest) -> Result<(), PageError> {
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        let client = pool.get().await?;
        client
            .execute(
                "DELETE FROM admin_sessions WHERE token_hash = $1",
                &[&token_hash(cookie.value())],
            )
            .await?;
    }
    Ok(())
}

/// A cookie with the attributes every hygrocast cookie has.
fn cookie(
    settings: &Settings,
    name: &'static str,
    value: String,
    max_age: time::Duration,
) -> Cookie<'static> {
    let path = if settings.server.base_path.is_empty() {
        "/".to_string()
    } else {
        settings.server.base_path.clone()
    };
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(settings.ui.secure_cookies)
        .max_age(max_age)
        .finish()
}

pub fn session_cookie(settings: &Settings, token: String) -> Cookie<'static> {
    cookie(
        settings,
        SESSION_COOKIE,
        token,
        time::Duration::hours(SESSION_HOURS),
    )
}

pub fn login_cookie(settings: &Settings, token: String) -> Cookie<'static> {
    cookie(
        settings,
        LOGIN_COOKIE,
        token,
        time::Duration::minutes(LOGIN_FORM_MINUTES),
    )
}

/// A cookie that deletes `name` in the browser.
pub fn removal(settings: &Settings, name: &'static str) -> Cookie<'static> {
    cookie(settings, name, String::new(), time::Duration::ZERO)
}

/// Refuses an admin POST without a session or without the session's CSRF token.
pub fn require_admin<'a>(
    admin: Option<&'a Admin>,
    form_csrf: Option<&str>,
) -> Result<&'a Admin, PageError> {
    let admin = admin.ok_or_else(|| {
        PageError::Forbidden("This action needs the admin login: log in first.".into())
    })?;
    match form_csrf {
        Some(t) if tokens_equal(t, &admin.csrf) => Ok(admin),
        Some(_) => Err(PageError::Forbidden(
            "The form's CSRF token is wrong (the form may be from an old session): reload the page and try again."
                .into(),
        )),
        None => Err(PageError::Forbidden(
            "The form has no CSRF token: reload the page and try again.".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong"));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn csrf_is_checked_after_the_session() {
        let admin = Admin { csrf: "abc".into() };
        assert!(require_admin(None, Some("abc")).is_err());
        assert!(require_admin(Some(&admin), None).is_err());
        assert!(require_admin(Some(&admin), Some("abd")).is_err());
        assert!(require_admin(Some(&admin), Some("ab")).is_err());
        assert!(require_admin(Some(&admin), Some("abc")).is_ok());
    }
}
