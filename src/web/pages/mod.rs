//! The HTML pages: dashboard, sensor, models, run, login, and the admin actions.
//!
//! Handlers gather data (`data`), check access (`auth`) and hand view data to the maud
//! components in `templates/`. Every error becomes an HTML page in the site's frame
//! (`error`). Every URL a page emits goes through `Ctx::url`, which adds
//! `server.base_path`, so the pages work behind `ProxyPass /hygrocast/ …`.

pub mod auth;
pub mod cache;
pub mod data;
pub mod error;

use std::future::Future;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{Duration, Utc};
use maud::Markup;

use self::cache::Lookup;
use self::error::PageError;
use crate::domain::SensorKind;
use crate::registry::{monitor, runs, serving, versions, Trigger};
use crate::templates::{self, layout, Ctx};
use crate::web::AppState;

/// Who may see a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Read-only: public unless `ui.public = false`.
    Read,
    /// Always public (login page, error pages).
    Public,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard))
        .route("/sensors/{name}", web::get().to(sensor))
        .route("/sensors/{name}/retrain", web::post().to(retrain))
        .route("/sensors/{name}/rollback", web::post().to(rollback))
        .route("/models", web::get().to(models))
        .route("/models/{version_id}/promote", web::post().to(promote))
        .route("/runs/{id}", web::get().to(run))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login))
        .route("/logout", web::get().to(logout_form))
        .route("/logout", web::post().to(logout))
        .route("/static/style.css", web::get().to(stylesheet))
        .route("/favicon.svg", web::get().to(favicon))
        .default_service(web::to(not_found));
}

/// The page context of a request: base path, time zone, admin session.
async fn context(state: &AppState, req: &HttpRequest) -> Result<Ctx, PageError> {
    let admin = auth::session(&state.pool, req).await?;
    Ok(Ctx {
        admin,
        ..bare_context(state)
    })
}

/// A context without a session (for error pages when even the session lookup failed).
fn bare_context(state: &AppState) -> Ctx {
    let ui = &state.settings.ui;
    Ctx {
        base: state.settings.server.base_path.clone(),
        tz: ui.tz(),
        admin: None,
        login_enabled: !ui.admin_password_hash.is_empty(),
        now: Utc::now(),
        step_secs: state.settings.forecast.step_secs,
    }
}

/// An HTML response with the headers every page carries.
fn html(status: StatusCode, markup: Markup) -> HttpResponse {
    html_bytes(status, web::Bytes::from(markup.into_string()))
}

fn html_bytes(status: StatusCode, body: web::Bytes) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // Pages may carry a CSRF token and change by the minute: never cached.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // No scripts at all, styles and images only from us, forms only to us.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .body(body)
}

fn error_response(ctx: &Ctx, e: &PageError) -> HttpResponse {
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = %e, "page failed");
    } else {
        tracing::debug!(error = %e, status = status.as_u16(), "page refused");
    }
    let mut res = html(
        status,
        layout::error_page(ctx, status.as_u16(), e.heading(), &e.public_message()),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    res
}

/// A 303 to an app path (the base path is added).
fn see_other(ctx: &Ctx, path: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, ctx.url(path)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Runs a page handler: builds the context, enforces `ui.public`, renders errors.
async fn serve_page<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    access: Access,
    f: F,
) -> HttpResponse
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = Result<HttpResponse, PageError>>,
{
    let ctx = match context(state, req).await {
        Ok(c) => c,
        Err(e) => return error_response(&bare_context(state), &e),
    };
    if access == Access::Read && !state.settings.ui.public && ctx.admin.is_none() {
        // Private installation: send the reader to the login, then back here.
        let here = match req.query_string() {
            "" => req.path().to_string(),
            q => format!("{}?{q}", req.path()),
        };
        let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        return see_other(&ctx, &format!("/login?next={next}"));
    }
    match f(ctx.clone()).await {
        Ok(res) => res,
        Err(e) => error_response(&ctx, &e),
    }
}

/// Fields of an `application/x-www-form-urlencoded` body. Parsed by hand rather than with
/// the `Form` extractor so that a missing field (above all the CSRF token) reaches our
/// checks and gets our 403 page, not the extractor's generic 400.
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Renders a read-only page, or reuses a recent rendering when the reader is anonymous
/// (see `cache`).
async fn cached_page<F, Fut>(
    state: &AppState,
    req: &HttpRequest,
    ctx: &Ctx,
    render: F,
) -> Result<HttpResponse, PageError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Markup, PageError>>,
{
    if ctx.admin.is_some() || req.query_string().len() > 256 {
        let body = web::Bytes::from(render().await?.into_string());
        return Ok(html_bytes(StatusCode::OK, body));
    }
    let key = format!("{}?{}", req.path(), req.query_string());
    match state.pages.lookup(&key) {
        Lookup::Hit(body) => Ok(html_bytes(StatusCode::OK, body)),
        Lookup::Render(ticket) => {
            let body = web::Bytes::from(render().await?.into_string());
            ticket.complete(body.clone());
            Ok(html_bytes(StatusCode::OK, body))
        }
    }
}

// ---------------------------------------------------------------- read-only pages

/// `GET /`
#[derive(Debug, serde::Deserialize)]
pub struct DashboardQuery {
    q: Option<String>,
    sort: Option<String>,
}

/// `GET /?q=hall&sort=attention`
async fn dashboard(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<DashboardQuery>,
) -> HttpResponse {
    let query = query.into_inner();
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Read, |ctx| async move {
        cached_page(state, req, &ctx, || async {
            // The "next" column covers a day, or the whole forecast when it is shorter.
            let f = &state.settings.forecast;
            let next_secs = f
                .step_secs
                .saturating_mul(i64::try_from(f.horizon).unwrap_or(i64::MAX))
                .min(86_400);
            let client = state.pool.get().await?;
            let rows = data::dashboard_rows(&**client, ctx.now, next_secs).await?;
            drop(client);
            let sort = templates::dashboard::Sort::parse(query.sort.as_deref());
            Ok(templates::dashboard::dashboard(
                &ctx,
                &rows,
                next_secs,
                state.settings.ui.stale_after_secs,
                query.q.as_deref().unwrap_or_default(),
                sort,
            ))
        })
        .await
    })
    .await
}

#[derive(Debug, serde::Deserialize)]
pub struct SensorQuery {
    horizon: Option<String>,
    days: Option<String>,
    done: Option<String>,
}

/// `GET /sensors/{name}?horizon=48h&days=30`
async fn sensor(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    query: web::Query<SensorQuery>,
) -> HttpResponse {
    let name = name.into_inner();
    let query = query.into_inner();
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Read, |ctx| async move {
        cached_page(state, req, &ctx, || async {
        let settings = &state.settings;
        let f = &settings.forecast;
        // The choices follow the configured step and horizon; the default is the whole
        // forecast (a fixed "120h" was a 400 on every sensor page with 5-minute steps).
        let horizons = templates::sensor::horizon_choices(f.step_secs, f.horizon);
        let (horizon, steps) = match query.horizon.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => (
                h.to_string(),
                serving::parse_horizon(h, f.step_secs, f.horizon)
                    .map_err(|e| PageError::BadRequest(e.to_string()))?,
            ),
            None => (
                horizons
                    .iter()
                    .find(|c| c.steps == f.horizon)
                    .map(|c| c.query.clone())
                    .unwrap_or_default(),
                f.horizon,
            ),
        };
        let days = match query.days.as_deref().filter(|d| !d.is_empty()) {
            None => settings.ui.history_days,
            Some(d) => d
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=crate::config::UiSettings::MAX_HISTORY_DAYS).contains(d))
                .ok_or_else(|| {
                    PageError::BadRequest(format!(
                        "days `{d}` must be a whole number from 1 to {}",
                        crate::config::UiSettings::MAX_HISTORY_DAYS
                    ))
                })?,
        };
        // The forecast first, on its own pooled connection (the serving path may take a
        // second one to record what it issued). Holding ours meanwhile could exhaust the
        // pool under load: every request holding one connection, waiting for another.
        let forecast =
            serving::forecast_for(&state.pool, settings, &state.forecasts, &name, steps).await;
        let client = state.pool.get().await?;
        let info = data::sensor_info(&**client, &name)
            .await?
            .ok_or_else(|| PageError::NotFound(format!("There is no sensor named “{name}”.")))?;
        let bucket = data::history_bucket(days, f.step_secs);
        let since = ctx.now - Duration::days(i64::from(days));
        // One connection, five queries pipelined (tokio-postgres sends them together).
        let c = &**client;
        let (history, versions, promotions, live, runs) = tokio::try_join!(
            data::history(c, info.id, since, bucket),
            async { Ok::<_, PageError>(versions::list(c, Some(info.id), 20).await?) },
            async { Ok(versions::promotions(c, Some(info.id), 10).await?) },
            async { Ok(monitor::recent_scores(c, info.id, 20).await?) },
            async { Ok(runs::list(c, Some(info.id), 10).await?) },
        )?;
        let champion = match versions.iter().find(|v| v.status == "champion") {
            Some(c) => Some(c.clone()),
            None => versions::champion(c, info.id).await?,
        };
        drop(client);
        let forecast = match forecast {
            Ok(f) => Ok(f),
            Err(crate::registry::RegistryError::UnknownSensor(_)) => {
                return Err(PageError::NotFound(format!(
                    "There is no sensor named “{name}”."
                )))
            }
            Err(e @ crate::registry::RegistryError::Refused(_)) => Err(e.to_string()),
            Err(e @ crate::registry::RegistryError::Forecast(_)) => Err(e.to_string()),
            Err(e) => return Err(e.into()),
        };
        let bounds = info
            .kind
            .parse::<SensorKind>()
            .map(SensorKind::valid_range)
            .unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
        let notice = match query.done.as_deref() {
            Some("retrain") => Some("Retraining queued: the run appears under “Recent training runs” and is picked up within seconds."),
            Some("promote") => Some("The version was promoted to champion."),
            Some("rollback") => Some("Rolled back: the previous champion serves again."),
            _ => None,
        };
        let view = templates::sensor::SensorView {
            name: name.clone(),
            kind: info.kind,
            unit: info.unit,
            location: info.location,
            bounds,
            last: info.last,
            stale_after_secs: settings.ui.stale_after_secs,
            days,
            horizons,
            horizon,
            history,
            history_step: bucket,
            forecast,
            champion,
            versions,
            promotions,
            live,
            runs,
            notice,
        };
        Ok(templates::sensor::sensor(&ctx, &view))
        })
        .await
    })
    .await
}

/// `GET /models`
async fn models(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Read, |ctx| async move {
        let client = state.pool.get().await?;
        let c = &**client;
        let (runs, versions, promotions) = tokio::try_join!(
            runs::list(c, None, 200),
            versions::list(c, None, 200),
            versions::promotions(c, None, 100),
        )?;
        drop(client);
        Ok(html(
            StatusCode::OK,
            templates::models::models(&ctx, &runs, &versions, &promotions),
        ))
    })
    .await
}

/// `GET /runs/{id}`
async fn run(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let id = id.into_inner();
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Read, |ctx| async move {
        let not_found = || PageError::NotFound(format!("There is no training run {id}."));
        let run_id: i64 = id.parse().map_err(|_| not_found())?;
        let client = state.pool.get().await?;
        let record = match runs::get(&**client, run_id).await {
            Err(crate::registry::RegistryError::UnknownRun(_)) => return Err(not_found()),
            other => other?,
        };
        let unit: String = client
            .query_opt(
                "SELECT unit FROM sensors WHERE name = $1",
                &[&record.sensor],
            )
            .await?
            .map(|r| r.get(0))
            .unwrap_or_default();
        let version = match record.version_id {
            Some(v) => Some(versions::get(&**client, v).await?),
            None => None,
        };
        drop(client);
        Ok(html(
            StatusCode::OK,
            templates::run::run(&ctx, &record, &unit, version.as_ref()),
        ))
    })
    .await
}

/// Anything else: an HTML 404 (JSON under `/api/`, where clients expect JSON).
async fn not_found(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if req.path().starts_with("/api/") {
        return HttpResponse::NotFound().json(serde_json::json!({
            "error": format!("no such endpoint: {} {}", req.method(), req.path()),
            "status": 404
        }));
    }
    let ctx = bare_context(&state);
    error_response(
        &ctx,
        &PageError::NotFound(format!("There is no page at {}.", ctx.url(req.path()))),
    )
}

// ---------------------------------------------------------------- assets

/// Versioned assets (`?v=<digest>` in every link) can be cached for a year; the ETag
/// lets a client that fetched the bare URL revalidate cheaply.
fn asset(req: &HttpRequest, content_type: &'static str, body: &'static str) -> HttpResponse {
    let etag = format!("\"{}\"", templates::asset_version());
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if matches {
        res.finish()
    } else {
        res.content_type(content_type).body(body)
    }
}

async fn stylesheet(req: HttpRequest) -> HttpResponse {
    asset(&req, "text/css; charset=utf-8", templates::STYLE)
}

async fn favicon(req: HttpRequest) -> HttpResponse {
    asset(&req, "image/svg+xml", templates::FAVICON)
}

// ---------------------------------------------------------------- login

#[derive(Debug, serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a local path may be a login's destination (no `//host`, no scheme).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// `GET /login`
async fn login_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Public, |ctx| async move {
        if ctx.admin.is_some() {
            return Ok(see_other(&ctx, &next));
        }
        let token = auth::random_token();
        let mut res = html(
            StatusCode::OK,
            templates::login::login(&ctx, &token, &next, None),
        );
        res.add_cookie(&auth::login_cookie(&state.settings, token))
            .map_err(|e| PageError::Internal(e.to_string()))?;
        Ok(res)
    })
    .await
}

/// The real client (behind a trusted proxy, the address it forwarded), for the log.
fn client_addr(req: &HttpRequest) -> String {
    req.extensions()
        .get::<crate::web::proxy::ClientInfo>()
        .map(|c| c.addr_display())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `POST /login` (password, csrf, next)
async fn login(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let fields = form_fields(&body);
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Public, |ctx| async move {
        let hash = state.settings.ui.admin_password_hash.clone();
        if hash.is_empty() {
            return Err(PageError::Forbidden(
                "No admin password is configured: run `hygrocast admin set-password`.".into(),
            ));
        }
        let form_token = field(&fields, "csrf").unwrap_or_default();
        let cookie_token = req
            .cookie(auth::LOGIN_COOKIE)
            .map(|c| c.value().to_string())
            .unwrap_or_default();
        if form_token.is_empty() || !auth::tokens_equal(form_token, &cookie_token) {
            return Err(PageError::Forbidden(
                "The login form expired or did not come from this site: open the login page again."
                    .into(),
            ));
        }
        let next = safe_next(field(&fields, "next"));
        let password = field(&fields, "password").unwrap_or_default().to_string();
        // Argon2 is deliberately slow: keep it off the async threads.
        let ok = tokio::task::spawn_blocking(move || auth::verify_password(&hash, &password))
            .await
            .map_err(|e| PageError::Internal(format!("password check panicked: {e}")))?;
        if !ok {
            tracing::warn!(client = %client_addr(req), "admin login failed");
            return Ok(html(
                StatusCode::UNAUTHORIZED,
                templates::login::login(&ctx, &cookie_token, &next, Some("Wrong password.")),
            ));
        }
        let token = auth::create_session(&state.pool).await?;
        tracing::info!(client = %client_addr(req), "admin logged in");
        let mut res = see_other(&ctx, &next);
        res.add_cookie(&auth::session_cookie(&state.settings, token))
            .and_then(|_| res.add_cookie(&auth::removal(&state.settings, auth::LOGIN_COOKIE)))
            .map_err(|e| PageError::Internal(e.to_string()))?;
        Ok(res)
    })
    .await
}

/// `GET /logout`: a confirmation form (logging out is a POST).
async fn logout_form(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Public, |ctx| async move {
        if ctx.admin.is_none() {
            return Ok(see_other(&ctx, "/"));
        }
        Ok(html(StatusCode::OK, templates::login::logout(&ctx)))
    })
    .await
}

/// `POST /logout` (csrf)
async fn logout(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let fields = form_fields(&body);
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Public, |ctx| async move {
        auth::require_admin(ctx.admin.as_ref(), field(&fields, "csrf"))?;
        auth::end_session(&state.pool, req).await?;
        let mut res = see_other(&ctx, "/");
        res.add_cookie(&auth::removal(&state.settings, auth::SESSION_COOKIE))
            .map_err(|e| PageError::Internal(e.to_string()))?;
        Ok(res)
    })
    .await
}

// ---------------------------------------------------------------- admin actions

/// `POST /sensors/{name}/retrain` (csrf): queues a manual training run.
async fn retrain(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let fields = form_fields(&body);
    let name = name.into_inner();
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Public, |ctx| async move {
        auth::require_admin(ctx.admin.as_ref(), field(&fields, "csrf"))?;
        let client = state.pool.get().await?;
        let sensor_id = versions::sensor_id(&**client, &name).await?;
        let run_id = runs::enqueue(&**client, sensor_id, Trigger::Manual, None).await?;
        tracing::info!(sensor = %name, run_id, "retrain requested on the pages");
        Ok(see_other(&ctx, &format!("/sensors/{name}?done=retrain")))
    })
    .await
}

/// `POST /models/{version_id}/promote` (csrf): makes a version the champion.
async fn promote(
    state: web::Data<AppState>,
    req: HttpRequest,
    version_id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let fields = form_fields(&body);
    let version_id = version_id.into_inner();
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Public, |ctx| async move {
        auth::require_admin(ctx.admin.as_ref(), field(&fields, "csrf"))?;
        let id: i64 = version_id
            .parse()
            .map_err(|_| PageError::NotFound(format!("There is no model version {version_id}.")))?;
        let mut client = state.pool.get().await?;
        let promoted = versions::promote(&mut client, id).await?;
        state.forecasts.invalidate_sensor(&promoted.sensor);
        tracing::info!(sensor = %promoted.sensor, version = promoted.version, "promoted on the pages");
        Ok(see_other(
            &ctx,
            &format!("/sensors/{}?done=promote", promoted.sensor),
        ))
    })
    .await
}

/// `POST /sensors/{name}/rollback` (csrf): restores the previous champion.
async fn rollback(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let fields = form_fields(&body);
    let name = name.into_inner();
    let (state, req) = (&*state, &req);
    serve_page(state, req, Access::Public, |ctx| async move {
        auth::require_admin(ctx.admin.as_ref(), field(&fields, "csrf"))?;
        let mut client = state.pool.get().await?;
        let restored = versions::rollback(&mut client, &name).await?;
        state.forecasts.invalidate_sensor(&name);
        tracing::info!(sensor = %name, version = restored.version, "rolled back on the pages");
        Ok(see_other(&ctx, &format!("/sensors/{name}?done=rollback")))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_login_destinations() {
        assert_eq!(safe_next(Some("/sensors/a?days=3")), "/sensors/a?days=3");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
