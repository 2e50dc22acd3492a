//! The web pages against the real app and database: every page renders with its content,
//! links carry the base path, errors are HTML pages, and admin actions need both the
//! login and the CSRF token.

mod common;

use std::collections::HashMap;

use chrono::{Duration, Utc};
use common::{insert_readings, insert_sensor, simulated_hourly, spawn_app_with, TestApp};
use hygrocast::config::Settings;
use hygrocast::forecast::Algorithm;
use hygrocast::registry::{runs, trainer, versions, Trigger};
use hygrocast::web::pages::auth;

const PASSWORD: &str = "tomato-humidity-42";

fn password_hash() -> String {
    use std::sync::OnceLock;
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| auth::hash_password(PASSWORD).expect("hash"))
        .clone()
}

/// Small training windows (debug build), no background jobs, an admin password.
fn quick(settings: &mut Settings) {
    settings.forecast.window_days = 5;
    settings.forecast.train_days = 40;
    settings.forecast.min_history_days = 14;
    settings.scheduler.retrain_enabled = false;
    settings.scheduler.monitor_enabled = false;
    settings.ui.admin_password_hash = password_hash();
}

async fn app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(|s| {
        quick(s);
        adjust(s);
    })
    .await
}

/// A sensor with `days` of simulated hourly readings up to now.
async fn sensor_with_data(app: &TestApp, name: &str, days: i64) -> i64 {
    let client = app.client().await;
    let id = insert_sensor(&client, name).await;
    insert_readings(&client, id, &simulated_hourly(11, Utc::now(), days)).await;
    id
}

/// Queues and runs one training run in-process, as the scheduler's worker would.
async fn train(app: &TestApp, sensor_id: i64, algo: Option<Algorithm>) -> runs::RunRecord {
    let client = app.pool.get().await.expect("client");
    let id = runs::enqueue(&**client, sensor_id, Trigger::Manual, algo)
        .await
        .expect("enqueue");
    trainer::run_claimed(&app.pool, &app.settings, "test", &[id], |_| {})
        .await
        .expect("run");
    let run = runs::get(&**client, id).await.expect("run record");
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    run
}

async fn body(res: reqwest::Response) -> String {
    res.text().await.expect("body")
}

async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let res = app.get(path).await;
    let status = res.status().as_u16();
    (status, body(res).await)
}

/// The value of the first `name="…" value="…"` hidden field.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Every `href`, `action` and `src` attribute value of a page.
fn urls(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "action=\"", "src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    out
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

/// A minimal browser: keeps cookies between requests (reqwest's client here has no store).
struct Browser<'a> {
    app: &'a TestApp,
    cookies: HashMap<String, String>,
    /// The raw Set-Cookie headers seen, to check their attributes.
    set_cookies: Vec<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
            set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, res: &reqwest::Response) {
        for h in res.headers().get_all(reqwest::header::SET_COOKIE) {
            let raw = h.to_str().expect("ascii cookie").to_string();
            let pair = raw.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || raw.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
            self.set_cookies.push(raw);
        }
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let res = self
            .app
            .http
            .get(self.app.url(path))
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep(&res);
        let status = res.status().as_u16();
        (status, body(res).await)
    }

    /// POSTs a form; returns status, Location header and body.
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let encoded: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let res = self
            .app
            .http
            .post(self.app.url(path))
            .header("Cookie", self.cookie_header())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(encoded)
            .send()
            .await
            .expect("POST");
        self.keep(&res);
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, location, body(res).await)
    }

    /// Logs in through the form and returns the session's CSRF token.
    async fn login(&mut self) -> String {
        let (status, html) = self.get("/login").await;
        assert_eq!(status, 200, "{html}");
        let token = hidden_field(&html, "csrf").expect("login form token");
        let (status, location, html) = self
            .post(
                "/login",
                &[("csrf", &token), ("password", PASSWORD), ("next", "/")],
            )
            .await;
        assert_eq!(status, 303, "{html}");
        assert_eq!(
            location.as_deref(),
            Some(format!("{}/", self.app.settings.server.base_path).as_str())
        );
        assert!(self.cookies.contains_key(auth::SESSION_COOKIE));
        let (_, html) = self.get("/models").await;
        hidden_field(&html, "csrf").expect("a logged-in page carries the CSRF token")
    }
}

async fn queued_runs(app: &TestApp, sensor_id: i64) -> i64 {
    app.client()
        .await
        .query_one(
            "SELECT count(*) FROM training_runs WHERE sensor_id = $1 AND status = 'queued'",
            &[&sensor_id],
        )
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn the_dashboard_lists_every_sensor_with_its_latest_state() {
    // Simulated readings end up to an hour ago: two hours keeps greenhouse-1 fresh.
    let app = app_with(|s| s.ui.stale_after_secs = 7200).await;
    let id = sensor_with_data(&app, "greenhouse-1", 20).await;
    train(&app, id, None).await;
    // Issue a forecast (as the monitor does hourly) so the next-24 h range is stored.
    let (status, _) = page(&app, "/sensors/greenhouse-1").await;
    assert_eq!(status, 200);
    let client = app.client().await;
    let quiet = insert_sensor(&client, "cellar-2").await;
    let old = Utc::now() - Duration::hours(5);
    insert_readings(&client, quiet, &[(old, 71.5)]).await;
    insert_sensor(&client, "attic-3").await;

    let (status, html) = page(&app, "/").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<title>Dashboard · hygrocast</title>"));
    for name in ["greenhouse-1", "cellar-2", "attic-3"] {
        assert!(
            html.contains(&format!("href=\"/sensors/{name}\"")),
            "{name}"
        );
    }
    // Sorted by name.
    let pos = |n: &str| html.find(&format!("href=\"/sensors/{n}\"")).expect("row");
    assert!(pos("attic-3") < pos("cellar-2") && pos("cellar-2") < pos("greenhouse-1"));
    assert!(html.contains("3 sensors"));
    assert!(html.contains("71.5"), "last reading of cellar-2");
    assert!(html.contains("5 h ago"));
    assert!(
        count(&html, "badge-stale") >= 2,
        "cellar-2 is stale, attic-3 has no data"
    );
    assert!(html.contains("no data"));
    assert!(
        count(&html, "class=\"sparkline\"") >= 2,
        "sparklines of the sensors with data"
    );
    assert!(html.contains("not trained"));
    let row = &html[pos("greenhouse-1")..];
    let row = &row[..row.find("</tr>").expect("row end")];
    assert!(row.contains(">v1<"), "champion shown: {row}");
    assert!(row.contains("%RH"), "next-24 h range shown: {row}");
    assert!(html.contains(">Next 24 h</th>"), "{html}");

    // Filter and sort (plain GET form).
    let (_, html) = page(&app, "/?q=cell").await;
    assert!(html.contains("href=\"/sensors/cellar-2\""));
    assert!(!html.contains("href=\"/sensors/greenhouse-1\""));
    assert!(html.contains("showing 1 of 3"));
    let (_, html) = page(&app, "/?sort=attention").await;
    let pos = |n: &str| html.find(&format!("href=\"/sensors/{n}\"")).expect("row");
    assert!(pos("attic-3") < pos("greenhouse-1") && pos("cellar-2") < pos("greenhouse-1"));
}

#[tokio::test]
async fn the_sensor_page_draws_history_forecast_bands_and_now_and_lists_the_forecast() {
    let app = app_with(|s| s.ui.timezone = "Europe/Berlin".into()).await;
    let id = sensor_with_data(&app, "museum-hall", 20).await;
    // A six-hour hole three days ago must show as a gap in the history line.
    app.client()
        .await
        .execute(
            "DELETE FROM readings WHERE sensor_id = $1 AND ts BETWEEN now() - interval '3 days' \
             AND now() - interval '3 days' + interval '6 hours'",
            &[&id],
        )
        .await
        .expect("make a gap");
    let run = train(&app, id, None).await;

    let (status, html) = page(&app, "/sensors/museum-hall?horizon=24h&days=7").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<title>museum-hall · hygrocast</title>"));
    assert!(html.contains("<h1>museum-hall</h1>"));
    for id in [
        "id=\"history\"",
        "id=\"forecast\"",
        "id=\"band80\"",
        "id=\"band95\"",
        "id=\"now-marker\"",
    ] {
        assert!(html.contains(id), "chart series {id} missing");
    }
    assert_eq!(count(&html, "class=\"forecast-row\""), 24);
    // How far ahead each row lies, in hours.
    assert!(html.contains("<td class=\"num\">1 h</td>"), "{html}");
    assert!(html.contains("<td class=\"num\">24 h</td>"));
    assert!(!html.contains("<td class=\"num\">25 h</td>"));
    // The history path is broken at the gap: more than one subpath.
    let d_start = html.find("id=\"history\" d=\"").expect("history path") + 16;
    let d = &html[d_start..d_start + html[d_start..].find('"').expect("end")];
    assert!(
        count(d, "M") >= 2,
        "the gap must break the line: {}",
        &d[..80.min(d.len())]
    );
    // Axes: %RH label and time ticks.
    assert!(html.contains(">%RH</text>"));
    assert!(html.contains("Times in Europe/Berlin"));
    // The horizon selector is a plain GET form with every horizon.
    assert!(html.contains("method=\"get\" action=\"/sensors/museum-hall\""));
    for h in ["1h", "6h", "24h", "48h", "120h"] {
        assert!(html.contains(&format!("value=\"{h}\"")), "{h}");
    }
    assert!(html.contains("<option value=\"24h\" selected>"));
    assert!(html.contains("label for=\"horizon\""));
    // The model in service and the runs.
    assert!(html.contains(&format!("href=\"/runs/{}\"", run.id)));
    assert!(html.contains(&run.algorithm.clone().expect("algorithm")));
    assert!(html.contains("Backtest MASE 1–24 h"));
    // No admin controls when not logged in.
    assert!(!html.contains("Retrain now"));
    assert!(!html.contains("name=\"csrf\""));

    let (_, html) = page(&app, "/sensors/museum-hall?horizon=6h").await;
    assert_eq!(count(&html, "class=\"forecast-row\""), 6);
    let (_, html) = page(&app, "/sensors/museum-hall").await;
    assert_eq!(
        count(&html, "class=\"forecast-row\""),
        120,
        "default: 5 days"
    );

    let (status, html) = page(&app, "/sensors/museum-hall?horizon=7d").await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("<!DOCTYPE html>"));
    let (status, _) = page(&app, "/sensors/museum-hall?days=0").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_sensor_without_readings_or_model_still_gets_a_page() {
    let app = app_with(|_| {}).await;
    insert_sensor(&app.client().await, "brand-new").await;
    let (status, html) = page(&app, "/sensors/brand-new").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("no readings yet"));
    assert!(html.contains("No forecast"));
    assert!(html.contains("id=\"now-marker\""));
}

#[tokio::test]
async fn the_horizon_selector_follows_the_configured_step() {
    // 120 steps of 5 minutes: the page must not default to the 5 days of hourly steps.
    let app = app_with(|s| s.forecast.step_secs = 300).await;
    insert_sensor(&app.client().await, "fast-1").await;
    let (status, html) = page(&app, "/sensors/fast-1").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<option value=\"10h\" selected>10 hours</option>"),
        "{html}"
    );
    assert!(html.contains("<option value=\"5m\">5 minutes</option>"));
    assert!(!html.contains("value=\"120h\""));
    let (status, _) = page(&app, "/sensors/fast-1?horizon=30m").await;
    assert_eq!(status, 200);
    let (status, html) = page(&app, "/sensors/fast-1?horizon=120h").await;
    assert_eq!(status, 400, "{html}");
    // The dashboard's range covers the 10 hours forecast, and says so.
    let (status, html) = page(&app, "/").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(">Next 10 h</th>"), "{html}");
    assert!(html.contains("the next 10 hours"), "{html}");
}

#[tokio::test]
async fn score_labels_name_the_time_their_steps_reach() {
    // Scores average horizons 1–24 and 1–120 *steps*: on 30-minute steps that is the first
    // 12 and 60 hours, and the pages must not call them "1–24 h".
    let app = app_with(|s| s.forecast.step_secs = 1800).await;
    let id = sensor_with_data(&app, "half-hourly", 30).await;
    let run = train(&app, id, Some(Algorithm::Naive)).await;
    assert_eq!(run.step_secs, Some(1800));
    let paths = [
        "/".to_string(),
        "/models".to_string(),
        "/sensors/half-hourly".to_string(),
        format!("/runs/{}", run.id),
    ];
    for path in &paths {
        let (status, html) = page(&app, path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(
            !html.contains("1–24 h") && !html.contains("1–120 h"),
            "{path}: {html}"
        );
    }
    let (_, html) = page(&app, "/").await;
    assert!(html.contains("horizons 30 min–12 h, last 7 days"), "{html}");
    let (_, html) = page(&app, "/models").await;
    assert!(html.contains(">MASE 30 min–12 h</th>"), "{html}");
    assert!(html.contains(">MASE 30 min–60 h</th>"), "{html}");
    let (_, html) = page(&app, "/sensors/half-hourly").await;
    assert!(html.contains("Backtest MASE 30 min–12 h"), "{html}");
    let (_, html) = page(&app, &format!("/runs/{}", run.id)).await;
    assert!(html.contains(">RMSE 30 min–60 h</th>"), "{html}");
}

#[tokio::test]
async fn unknown_things_get_an_html_404() {
    let app = app_with(|_| {}).await;
    let (status, html) = page(&app, "/sensors/no-such-sensor").await;
    assert_eq!(status, 404);
    assert!(
        html.contains("<!DOCTYPE html>") && html.contains("no-such-sensor"),
        "{html}"
    );
    assert!(html.contains("href=\"/\""), "a way back");
    for path in ["/runs/999", "/runs/abc", "/nothing/here"] {
        let (status, html) = page(&app, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(html.contains("Not found"), "{path}: {html}");
    }
    let res = app.get("/api/v1/nothing").await;
    assert_eq!(res.status().as_u16(), 404);
    let json: serde_json::Value = res.json().await.expect("API 404s stay JSON");
    assert_eq!(json["status"], 404);
}

#[tokio::test]
async fn the_models_and_run_pages_show_runs_versions_and_the_backtest() {
    let app = app_with(|_| {}).await;
    let id = sensor_with_data(&app, "warehouse-7", 30).await;
    let run = train(&app, id, None).await;

    let (status, html) = page(&app, "/models").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<title>Models · hygrocast</title>"));
    assert!(html.contains(&format!("href=\"/runs/{}\"", run.id)));
    assert!(html.contains("href=\"/sensors/warehouse-7\""));
    assert!(html.contains("badge-champion"));
    assert!(html.contains("badge-succeeded"));
    assert!(html.contains("manual"), "trigger shown");
    assert!(html.contains("id=\"promotions-table\""));

    let (status, html) = page(&app, &format!("/runs/{}", run.id)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&format!(
        "<title>Run {} of warehouse-7 · hygrocast</title>",
        run.id
    )));
    let digest = run.data_digest.expect("digest");
    assert!(html.contains(&digest), "data snapshot digest");
    assert!(html.contains(&run.data_rows.expect("rows").to_string()));
    assert!(html.contains("id=\"backtest-table\""));
    assert!(html.contains("id=\"backtest-chart\""));
    let candidates = run.metrics.expect("metrics")["candidates"]
        .as_array()
        .expect("candidates")
        .len();
    assert_eq!(
        count(&html, "data-model=\""),
        candidates,
        "one error line per candidate"
    );
    assert!(
        !html.contains("Last heartbeat"),
        "a finished run has no lease"
    );

    // A run being fitted shows where, and its lease.
    let client = app.pool.get().await.expect("client");
    runs::enqueue(&**client, id, Trigger::Manual, None)
        .await
        .expect("enqueue");
    let running = runs::claim_next(&**client, "fitter-host:42:beef", None)
        .await
        .expect("claim")
        .expect("claimed");
    let (status, html) = page(&app, &format!("/runs/{}", running.id)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("badge-running"), "{html}");
    assert!(html.contains("fitter-host:42:beef"));
    assert!(html.contains("Last heartbeat"));
}

#[tokio::test]
async fn with_a_base_path_every_link_form_and_asset_carries_it() {
    let app = app_with(|s| s.server.base_path = "/hygrocast".into()).await;
    let id = sensor_with_data(&app, "greenhouse-1", 20).await;
    train(&app, id, None).await;
    let mut browser = Browser::new(&app);
    let csrf = browser.login().await;
    assert!(!csrf.is_empty());
    let cookie = browser
        .set_cookies
        .iter()
        .find(|c| c.starts_with(auth::SESSION_COOKIE))
        .expect("session cookie");
    assert!(cookie.contains("Path=/hygrocast"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "secure_cookies is off: {cookie}"
    );

    let run_id = runs::list(&**app.pool.get().await.expect("c"), None, 1)
        .await
        .expect("runs")[0]
        .id;
    for path in [
        "/",
        "/sensors/greenhouse-1",
        "/models",
        &format!("/runs/{run_id}"),
        "/nope",
    ] {
        let (_, html) = browser.get(path).await;
        let all = urls(&html);
        assert!(all.len() > 3, "{path}");
        for u in all {
            assert!(
                u.starts_with("/hygrocast/") || u == "/hygrocast" || u.starts_with('#'),
                "{path}: `{u}` lacks the base path"
            );
        }
        assert!(
            html.contains("href=\"/hygrocast/static/style.css?v="),
            "{path}"
        );
        assert!(html.contains("rel=\"icon\""), "{path}");
    }
    // Redirects carry it too.
    let (status, location, _) = browser
        .post("/sensors/greenhouse-1/retrain", &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/hygrocast/sensors/greenhouse-1?done=retrain")
    );
}

#[tokio::test]
async fn admin_actions_need_the_login_and_the_csrf_token() {
    let app = app_with(|_| {}).await;
    let id = sensor_with_data(&app, "greenhouse-1", 30).await;
    // v1: naive; v2: the backtest's choice, which beats naive and becomes champion.
    train(&app, id, Some(Algorithm::Naive)).await;
    train(&app, id, None).await;
    let client = app.pool.get().await.expect("client");
    let all = versions::list(&**client, Some(id), 10)
        .await
        .expect("versions");
    let v1 = all.iter().find(|v| v.version == 1).expect("v1").id;
    let champion = || async {
        versions::champion(&**app.pool.get().await.expect("c"), id)
            .await
            .expect("champion")
            .expect("a champion")
            .version
    };
    assert_eq!(champion().await, 2);

    // Without a login: refused, nothing happens.
    let mut anonymous = Browser::new(&app);
    let promote = format!("/models/{v1}/promote");
    for (path, form) in [
        ("/sensors/greenhouse-1/retrain", vec![("csrf", "x")]),
        (promote.as_str(), vec![("csrf", "x")]),
        ("/sensors/greenhouse-1/rollback", vec![]),
    ] {
        let (status, _, html) = anonymous.post(path, &form).await;
        assert_eq!(status, 403, "{path}: {html}");
        assert!(html.contains("log in"), "{path}: the page says why");
    }
    assert_eq!(queued_runs(&app, id).await, 0);
    assert_eq!(champion().await, 2);

    // Logged in, but without or with a wrong CSRF token: refused.
    let mut admin = Browser::new(&app);
    let csrf = admin.login().await;
    let (_, html) = admin.get("/sensors/greenhouse-1").await;
    assert!(
        html.contains("Retrain now"),
        "admin controls shown when logged in"
    );
    assert!(html.contains(&format!("action=\"/models/{v1}/promote\"")));
    let wrong = "0".repeat(csrf.len());
    for (path, form) in [
        ("/sensors/greenhouse-1/retrain", vec![]),
        (
            "/sensors/greenhouse-1/retrain",
            vec![("csrf", wrong.as_str())],
        ),
        (promote.as_str(), vec![("csrf", wrong.as_str())]),
        ("/sensors/greenhouse-1/rollback", vec![("csrf", "")]),
    ] {
        let (status, _, html) = admin.post(path, &form).await;
        assert_eq!(status, 403, "{path} {form:?}: {html}");
        assert!(html.contains("CSRF"), "{html}");
    }
    assert_eq!(queued_runs(&app, id).await, 0);
    assert_eq!(champion().await, 2);

    // With both: accepted, and the effect is there.
    let (status, location, _) = admin
        .post("/sensors/greenhouse-1/retrain", &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/sensors/greenhouse-1?done=retrain")
    );
    assert_eq!(queued_runs(&app, id).await, 1, "a manual run is queued");
    let (_, html) = admin.get("/sensors/greenhouse-1?done=retrain").await;
    assert!(html.contains("Retraining queued"));
    assert!(html.contains("badge-queued"));

    let (status, location, _) = admin.post(&promote, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some("/sensors/greenhouse-1?done=promote")
    );
    assert_eq!(champion().await, 1, "v1 promoted");

    let (status, _, _) = admin
        .post("/sensors/greenhouse-1/rollback", &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        champion().await,
        2,
        "rollback restores the champion v1 replaced"
    );
    let (_, html) = admin.get("/models").await;
    assert!(html.contains("badge-rollback"));

    // Promoting the champion again is refused with a reason, as an HTML page.
    let (status, _, html) = admin.post(&promote, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303, "v1 is not the champion now: {html}");
    let (status, _, html) = admin.post(&promote, &[("csrf", &csrf)]).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("already the champion"));

    // After logging out the token no longer works.
    let (status, _, _) = admin.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let (status, _, _) = admin
        .post("/sensors/greenhouse-1/retrain", &[("csrf", &csrf)])
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_login_checks_the_password_and_its_own_form_token() {
    let app = app_with(|s| s.ui.secure_cookies = true).await;
    let mut b = Browser::new(&app);
    let (_, html) = b.get("/login").await;
    let token = hidden_field(&html, "csrf").expect("token");
    assert!(html.contains("<label for=\"password\">"));
    let (status, _, html) = b
        .post("/login", &[("csrf", &token), ("password", "wrong")])
        .await;
    assert_eq!(status, 401);
    assert!(html.contains("Wrong password"));
    assert!(!b.cookies.contains_key(auth::SESSION_COOKIE));
    // A form posted from elsewhere (no matching login cookie) is refused.
    let mut other = Browser::new(&app);
    let (status, _, _) = other
        .post("/login", &[("csrf", &token), ("password", PASSWORD)])
        .await;
    assert_eq!(status, 403);
    b.login().await;
    let cookie = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with(auth::SESSION_COOKIE))
        .expect("session cookie");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/"),
        "{cookie}"
    );
}

#[tokio::test]
async fn private_pages_require_the_login_when_ui_public_is_false() {
    let app = app_with(|s| s.ui.public = false).await;
    sensor_with_data(&app, "greenhouse-1", 2).await;
    for path in ["/", "/sensors/greenhouse-1", "/models", "/runs/1"] {
        let res = app.get(path).await;
        assert_eq!(res.status().as_u16(), 303, "{path}");
        let location = res.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(location.starts_with("/login?next="), "{location}");
    }
    let res = app.get("/sensors/greenhouse-1?days=3").await;
    assert_eq!(
        res.headers()["location"],
        "/login?next=%2Fsensors%2Fgreenhouse-1%3Fdays%3D3"
    );
    // The login page and the assets stay reachable.
    assert_eq!(app.get("/login").await.status().as_u16(), 200);
    assert_eq!(app.get("/static/style.css").await.status().as_u16(), 200);
    let mut b = Browser::new(&app);
    b.login().await;
    let (status, html) = b.get("/sensors/greenhouse-1").await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>greenhouse-1</h1>"));
}

#[tokio::test]
async fn the_stylesheet_and_favicon_are_cached_and_revalidated() {
    let app = app_with(|_| {}).await;
    let (_, html) = page(&app, "/").await;
    let start = html.find("/static/style.css?v=").expect("versioned link");
    let href = &html[start..start + html[start..].find('"').expect("end")];
    let res = app.get(href).await;
    assert_eq!(res.status().as_u16(), 200);
    let headers = res.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/css"));
    let cache = headers["cache-control"].to_str().expect("cc");
    assert!(
        cache.contains("max-age=31536000") && cache.contains("public"),
        "{cache}"
    );
    let etag = headers["etag"].to_str().expect("etag").to_string();
    assert!(body(res).await.contains(".chart .band80"));
    let res = app
        .http
        .get(app.url("/static/style.css"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status().as_u16(), 304);
    let res = app.get("/favicon.svg").await;
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert!(body(res).await.starts_with("<svg"));
    // Pages themselves are never cached and allow no scripts.
    let res = app.get("/").await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("default-src 'none'"));
}

#[test]
fn admin_set_password_writes_a_hash_that_the_login_accepts() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("config.toml");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml"),
        &config,
    )
    .expect("copy config");
    let run = |args: &[&str], password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hygrocast"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run hygrocast");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("write password");
        child.wait_with_output().expect("output")
    };
    let short = run(&["admin", "set-password"], "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least"));

    let printed = run(&["admin", "set-password"], PASSWORD);
    assert!(printed.status.success());
    let stdout = String::from_utf8_lossy(&printed.stdout).to_string();
    let hash = stdout
        .split('"')
        .nth(1)
        .expect("the printed line holds the hash");
    assert!(auth::verify_password(hash, PASSWORD), "{stdout}");

    let written = run(&["admin", "set-password", "--write"], PASSWORD);
    assert!(written.status.success(), "{written:?}");
    let settings = Settings::load(Some(&config), Vec::new()).expect("the updated file loads");
    assert!(auth::verify_password(
        &settings.ui.admin_password_hash,
        PASSWORD
    ));
    let text = std::fs::read_to_string(&config).expect("read");
    assert!(
        text.contains("# Argon2 hash of the admin password"),
        "comments are kept"
    );
}

#[tokio::test]
async fn anonymous_readers_share_a_rendered_page_for_page_cache_secs_admins_never_do() {
    // A long interval, so the test does not depend on how fast this machine is.
    let app = app_with(|s| s.ui.page_cache_secs = 3600).await;
    sensor_with_data(&app, "cache-first", 2).await;
    let (_, before) = page(&app, "/").await;
    assert!(before.contains("cache-first"), "{before}");
    sensor_with_data(&app, "cache-second", 2).await;
    let (_, again) = page(&app, "/").await;
    assert!(
        !again.contains("cache-second"),
        "an anonymous reader within the interval gets the page rendered before"
    );
    // Another query string is another page.
    let (_, other) = page(&app, "/?sort=name").await;
    assert!(other.contains("cache-second"));
    // A logged-in admin always gets a fresh page (it carries their CSRF token).
    let mut admin = Browser::new(&app);
    admin.login().await;
    let (_, fresh) = admin.get("/").await;
    assert!(fresh.contains("cache-second"));

    let app = app_with(|s| s.ui.page_cache_secs = 0).await;
    page(&app, "/").await;
    sensor_with_data(&app, "uncached", 2).await;
    let (_, html) = page(&app, "/").await;
    assert!(html.contains("uncached"), "0 renders every request afresh");
}

#[tokio::test]
async fn a_version_whose_model_retention_deleted_is_shown_so_and_cannot_be_promoted() {
    let app = app_with(|_| {}).await;
    let id = sensor_with_data(&app, "museum-1", 30).await;
    for _ in 0..3 {
        train(&app, id, Some(Algorithm::Naive)).await;
    }
    let mut settings = (*app.settings).clone();
    settings.retention.models_kept = 1;
    let report = hygrocast::registry::retention::prune(&app.pool, &settings, Utc::now())
        .await
        .expect("prune");
    // Of three versions the newest, the champion and the rollback target keep their model.
    // Equal naive scores promote the newer version (a tie does not keep the older one), so
    // v3 serves, v2 is the rollback target and v1 alone loses its model.
    assert_eq!(report.models, 1, "{report}");
    let client = app.pool.get().await.expect("client");
    let all = versions::list(&**client, Some(id), 10)
        .await
        .expect("versions");
    let pruned: Vec<_> = all.iter().filter(|v| v.model_pruned_at.is_some()).collect();
    assert_eq!(pruned.len() as u64, report.models);
    let Some(v1) = pruned.first() else {
        panic!("one version was pruned");
    };
    assert_eq!((v1.version, v1.status.as_str()), (1, "retired"));

    let mut admin = Browser::new(&app);
    let csrf = admin.login().await;
    let (_, html) = admin.get("/sensors/museum-1").await;
    assert!(html.contains("model deleted"), "{html}");
    let promote = format!("/models/{}/promote", v1.id);
    assert!(!html.contains(&format!("action=\"{promote}\"")));
    let v2 = all.iter().find(|v| v.version == 2).expect("v2").id;
    assert!(html.contains(&format!("action=\"/models/{v2}/promote\"")));

    // A hand-made request is refused with a page that names the setting.
    let (status, _, html) = admin.post(&promote, &[("csrf", &csrf)]).await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("retention.models_kept"), "{html}");
}
