//! The MLOps loop against a real database: training runs, versions, promotion policy,
//! rollback, failures, scheduling across replicas, drift, export and the forecast API.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as Days, Utc};
use common::{insert_readings, insert_sensor, simulated_hourly, spawn_app_with, TestApp};
use hygrocast::config::Settings;
use hygrocast::forecast::Algorithm;
use hygrocast::registry::{retention, runs, serving::ForecastCache, trainer, versions, Trigger};
use hygrocast::scheduler::{self, Background, JobKind, Scheduler};

/// Small windows keep the backtests quick in a debug build.
fn quick(settings: &mut Settings) {
    settings.forecast.window_days = 5;
    settings.forecast.train_days = 40;
    settings.forecast.min_history_days = 14;
    settings.scheduler.retrain_enabled = false;
    settings.scheduler.monitor_enabled = false;
}

async fn app_with_sensor(name: &str, days: i64) -> (TestApp, i64) {
    app_with_sensor_and(name, days, |_| {}).await
}

/// [`app_with_sensor`] with settings changed after [`quick`].
async fn app_with_sensor_and(
    name: &str,
    days: i64,
    adjust: impl FnOnce(&mut Settings),
) -> (TestApp, i64) {
    let app = spawn_app_with(|s| {
        quick(s);
        adjust(s);
    })
    .await;
    let client = app.client().await;
    let id = insert_sensor(&client, name).await;
    insert_readings(&client, id, &simulated_hourly(7, Utc::now(), days)).await;
    (app, id)
}

fn background(app: &TestApp) -> Background {
    Background::new(
        app.pool.clone(),
        app.settings.clone(),
        Arc::new(ForecastCache::new(app.settings.registry.serve_recheck_ms)),
    )
}

/// Queues and runs one training run in-process, as `hygrocast train` does.
async fn train(app: &TestApp, sensor_id: i64, algo: Option<Algorithm>) -> runs::RunRecord {
    let client = app.pool.get().await.expect("client");
    let id = runs::enqueue(&**client, sensor_id, Trigger::Manual, algo)
        .await
        .expect("enqueue");
    trainer::run_claimed(&app.pool, &app.settings, "test", &[id], |_| {})
        .await
        .expect("run");
    runs::get(&**client, id).await.expect("run record")
}

async fn champion(app: &TestApp, sensor_id: i64) -> Option<versions::VersionRecord> {
    let client = app.pool.get().await.expect("client");
    versions::champion(&**client, sensor_id)
        .await
        .expect("champion")
}

#[tokio::test]
async fn a_run_records_what_it_saw_and_its_first_version_becomes_champion() {
    let (app, id) = app_with_sensor("greenhouse-1", 30).await;
    let run = train(&app, id, None).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    assert_eq!(run.trigger, "manual");
    assert_eq!(
        run.data_digest.as_ref().map(String::len),
        Some(64),
        "sha-256 hex digest"
    );
    assert!(run.data_rows.unwrap_or(0) >= 24 * 29);
    assert!(run.data_first.is_some() && run.data_last.is_some());
    assert!(run.duration_ms.is_some());
    let metrics = run.metrics.expect("backtest table");
    assert!(
        metrics["candidates"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{metrics}"
    );
    let champ = champion(&app, id).await.expect("a champion");
    assert_eq!(champ.version, 1);
    assert_eq!(Some(champ.run_id), Some(run.id));
    // With enough history the backtest chose among all candidates (baselines included).
    assert_eq!(champ.algorithm, run.algorithm.clone().expect("algorithm"));
    assert_eq!(
        champ.baseline,
        matches!(champ.algorithm.as_str(), "naive" | "seasonal_naive")
    );
    assert!(champ.mase_1_24.is_some());
}

#[tokio::test]
async fn a_month_old_sensor_is_scored_by_the_learned_candidates_under_the_default_window() {
    // The default 60-day evaluation window is longer than this sensor's history: the
    // backtest starts where the learned models have their three weeks, so they compete
    // (before, they were all skipped until the sensor had 81 days).
    let (app, id) = app_with_sensor_and("young", 30, |s| s.forecast.window_days = 60).await;
    let run = train(&app, id, None).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    let metrics = run.metrics.expect("backtest table");
    let scored: Vec<&str> = metrics["candidates"]
        .as_array()
        .map(|c| c.iter().filter_map(|m| m["model"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        scored,
        ["seasonal_naive", "ridge", "forest", "analog", "blend"],
        "{metrics}"
    );
    let origins: Vec<u64> = metrics["candidates"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|m| m["metrics"]["origins"].as_u64())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        origins.iter().all(|&o| o == origins[0] && o >= 4),
        "{metrics}"
    );

    // A requested model is compared with the champion on the origins they share: a
    // baseline alone would start earlier, on another MASE scale. Which one won depends on
    // the simulated weather (its phase follows the clock), so request the other kind.
    let champ = champion(&app, id).await.expect("a champion");
    let requested = if champ.algorithm == "seasonal_naive" {
        Algorithm::Ridge
    } else {
        Algorithm::SeasonalNaive
    };
    let run = train(&app, id, Some(requested)).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    let metrics = run.metrics.expect("backtest table");
    let scored: Vec<(&str, u64)> = metrics["candidates"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|m| Some((m["model"].as_str()?, m["metrics"]["origins"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        scored,
        [
            (requested.to_string().as_str(), origins[0]),
            (champ.algorithm.as_str(), origins[0])
        ],
        "{metrics}"
    );
}

#[tokio::test]
async fn too_little_history_is_served_by_the_labelled_baseline() {
    let (app, id) = app_with_sensor("new-sensor", 5).await;
    let run = train(&app, id, None).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    let champ = champion(&app, id).await.expect("champion");
    assert!(champ.baseline);
    assert_eq!(champ.algorithm, "seasonal_naive");
    let body = app
        .get_json("/api/v1/sensors/new-sensor/forecast?horizon=24h")
        .await;
    assert_eq!(body["model"]["baseline"], true, "{body}");
}

#[tokio::test]
async fn a_sensor_too_young_to_backtest_a_learned_model_is_served_the_blend() {
    // 23 days: enough to fit the learned models (21 days at a 120 h horizon), not to
    // backtest them, so only the baseline is scored and the blend serves untested.
    let (app, id) = app_with_sensor("young-1", 23).await;
    let run = train(&app, id, None).await;
    assert_eq!(run.status, "succeeded", "{:?}", run.error);
    let champ = champion(&app, id).await.expect("champion");
    assert!(!champ.baseline);
    assert_eq!(champ.algorithm, "blend");
    let metrics = run.metrics.expect("backtest table");
    let scored: Vec<&str> = metrics["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .filter_map(|c| c["model"].as_str())
        .collect();
    assert_eq!(scored, ["seasonal_naive"], "{metrics}");
    let body = app
        .get_json("/api/v1/sensors/young-1/forecast?horizon=120h")
        .await;
    assert_eq!(body["model"]["baseline"], false, "{body}");
    assert_eq!(body["model"]["algorithm"], "blend", "{body}");
    // The pages show a champion without a backtest score of its own.
    for path in ["/sensors/young-1", "/models"] {
        let page = app.get(path).await;
        assert_eq!(page.status(), 200, "{path}");
    }
    // Until the blend can be backtested, each new fit replaces the last one.
    let again = train(&app, id, None).await;
    assert_eq!(again.status, "succeeded", "{:?}", again.error);
    let champ = champion(&app, id).await.expect("champion");
    assert_eq!((champ.version, champ.run_id), (2, again.id));
    assert!(
        champ.status_reason.contains("newer data"),
        "{:?}",
        champ.status_reason
    );
    // A model asked for by name is fitted untested too, not refused.
    let requested = train(&app, id, Some(Algorithm::Ridge)).await;
    assert_eq!(requested.status, "succeeded", "{:?}", requested.error);
    let champ = champion(&app, id).await.expect("champion");
    assert_eq!((champ.version, champ.algorithm.as_str()), (3, "ridge"));
}

#[tokio::test]
async fn a_worse_challenger_is_not_promoted_and_rollback_restores_the_previous_champion() {
    let (app, id) = app_with_sensor("museum-hall", 30).await;
    // Start from the naive baseline as champion, then let the backtest choose.
    let first = train(&app, id, Some(Algorithm::Naive)).await;
    assert_eq!(first.status, "succeeded", "{:?}", first.error);
    assert_eq!(
        champion(&app, id).await.expect("champion").algorithm,
        "naive"
    );

    let second = train(&app, id, None).await;
    assert_eq!(second.status, "succeeded", "{:?}", second.error);
    let champ = champion(&app, id).await.expect("champion");
    assert_eq!(
        champ.version, 2,
        "the learned model beats naive: {}",
        champ.status_reason
    );

    // A deliberately worse challenger (naive again) is kept as a challenger, with a reason.
    let third = train(&app, id, Some(Algorithm::Naive)).await;
    assert_eq!(third.status, "succeeded");
    let champ = champion(&app, id).await.expect("champion");
    assert_eq!(
        champ.version, 2,
        "the worse challenger must not be promoted"
    );
    let client = app.pool.get().await.expect("client");
    let v3 = versions::list(&**client, Some(id), 10)
        .await
        .expect("list")
        .into_iter()
        .find(|v| v.version == 3)
        .expect("v3 stored");
    assert_eq!(v3.status, "challenger");
    assert!(
        v3.status_reason.contains("not better"),
        "{}",
        v3.status_reason
    );

    // Rollback: back to v1, recorded as a rollback.
    let mut client = app.pool.get().await.expect("client");
    let restored = versions::rollback(&mut client, "museum-hall")
        .await
        .expect("rollback");
    assert_eq!(restored.version, 1);
    assert_eq!(champion(&app, id).await.expect("champion").version, 1);
    let promos = versions::promotions(&**client, Some(id), 10)
        .await
        .expect("promotions");
    assert_eq!(promos[0].kind, "rollback");
    assert_eq!((promos[0].from_version, promos[0].to_version), (Some(2), 1));
}

#[tokio::test]
async fn a_failing_training_leaves_the_champion_serving() {
    let (app, id) = app_with_sensor("warehouse-2", 30).await;
    assert_eq!(train(&app, id, None).await.status, "succeeded");
    let before = champion(&app, id).await.expect("champion");

    // Ask for a learned model under settings that cannot give it enough history.
    let mut strict = (*app.settings).clone();
    strict.forecast.min_history_days = 365;
    let client = app.pool.get().await.expect("client");
    let run_id = runs::enqueue(&**client, id, Trigger::Manual, Some(Algorithm::Ridge))
        .await
        .expect("enqueue");
    let results = trainer::run_claimed(&app.pool, &strict, "test", &[run_id], |_| {})
        .await
        .expect("run");
    assert!(results[0].is_err());
    let run = runs::get(&**client, run_id).await.expect("run");
    assert_eq!(run.status, "failed");
    assert!(
        run.error.as_deref().is_some_and(|e| e.contains("history")),
        "{:?}",
        run.error
    );

    let after = champion(&app, id).await.expect("still a champion");
    assert_eq!(after.id, before.id);
    let res = app
        .get("/api/v1/sensors/warehouse-2/forecast?horizon=6h")
        .await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["model"]["version"], before.version);
}

#[tokio::test]
async fn the_forecast_api_serves_the_champion_with_intervals() {
    let (app, id) = app_with_sensor("station-9", 30).await;
    train(&app, id, None).await;
    let champ = champion(&app, id).await.expect("champion");
    let res = app
        .get("/api/v1/sensors/station-9/forecast?horizon=48h")
        .await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["sensor"], "station-9");
    assert_eq!(body["model"]["version"], champ.version);
    assert_eq!(body["model"]["algorithm"], champ.algorithm.as_str());
    assert_eq!(body["model"]["baseline"], champ.baseline);
    assert!(body["model"]["metrics"]["mase_1_24"].is_number(), "{body}");
    assert!(
        body["model"]["metrics"].get("mae_by_horizon").is_none(),
        "per-horizon MAE is for the models API, not every forecast"
    );
    let steps = body["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 48);
    let issued: DateTime<Utc> = body["issued_at"]
        .as_str()
        .expect("issued_at")
        .parse()
        .expect("rfc3339");
    let mut prev = issued;
    for s in steps {
        let ts: DateTime<Utc> = s["ts"].as_str().expect("ts").parse().expect("rfc3339");
        assert_eq!(ts - prev, Days::hours(1), "one step per hour");
        prev = ts;
        let (v, l8, h8, l9, h9) = (
            s["value"].as_f64().expect("value"),
            s["lo80"].as_f64().expect("lo80"),
            s["hi80"].as_f64().expect("hi80"),
            s["lo95"].as_f64().expect("lo95"),
            s["hi95"].as_f64().expect("hi95"),
        );
        assert!((0.0..=100.0).contains(&v));
        assert!(l9 <= l8 && l8 <= v && v <= h8 && h8 <= h9, "{s}");
        assert!(l9 >= 0.0 && h9 <= 100.0);
    }
    // The issued forecast is stored once per origin, for the monitor.
    let client = app.client().await;
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM issued_forecasts WHERE sensor_id = $1",
            &[&id],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 120);
    app.get("/api/v1/sensors/station-9/forecast").await;
    let again: i64 = client
        .query_one(
            "SELECT count(*) FROM issued_forecasts WHERE sensor_id = $1",
            &[&id],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(again, 120, "same origin, no second copy");

    assert_eq!(
        app.get("/api/v1/sensors/station-9/forecast?horizon=121h")
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get("/api/v1/sensors/station-9/forecast?horizon=soon")
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get("/api/v1/sensors/nobody/forecast").await.status(),
        404
    );

    let models = app.get_json("/api/v1/sensors/station-9/models").await;
    assert_eq!(models["champion"]["version"], champ.version);
    assert_eq!(models["versions"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        models["champion"]["metrics"]["mae_by_horizon"]
            .as_array()
            .map(Vec::len),
        Some(120),
        "{models}"
    );
    let run = app
        .get_json(&format!("/api/v1/runs/{}", champ.run_id))
        .await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["data_digest"].as_str().map(str::len), Some(64));
    assert_eq!(app.get("/api/v1/runs/999999").await.status(), 404);
}

#[tokio::test]
async fn an_unreadable_model_format_is_refitted_never_served() {
    let (app, id) = app_with_sensor("old-format", 30).await;
    train(&app, id, None).await;
    let client = app.client().await;
    client
        .execute(
            "UPDATE model_versions SET format_version = 999 WHERE sensor_id = $1",
            &[&id],
        )
        .await
        .expect("age the model");
    let body = app
        .get_json("/api/v1/sensors/old-format/forecast?horizon=6h")
        .await;
    assert_eq!(body["model"]["baseline"], true, "{body}");
    let queued: i64 = client
        .query_one(
            "SELECT count(*) FROM training_runs WHERE sensor_id = $1 AND status = 'queued'",
            &[&id],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(queued, 1, "a refit is queued");
}

#[tokio::test]
async fn the_nightly_job_fired_directly_trains_and_promotes() {
    let (app, id) = app_with_sensor("night-1", 30).await;
    let bg = background(&app);
    let detail = scheduler::fire(&bg, JobKind::Retrain, Utc::now())
        .await
        .expect("fire");
    assert!(detail.is_some_and(|d| d.contains("queued 1")));
    // A firing while that run still waits queues no second run behind it.
    let detail = scheduler::fire(&bg, JobKind::Retrain, Utc::now() + Days::hours(1))
        .await
        .expect("fire");
    assert!(
        detail.as_deref().is_some_and(|d| d.contains("queued 0")),
        "{detail:?}"
    );
    let client = app.pool.get().await.expect("client");
    let run = runs::list(&**client, Some(id), 1)
        .await
        .expect("runs")
        .remove(0);
    assert_eq!(run.trigger, "new-sensor");
    trainer::run_claimed(&app.pool, &app.settings, "test", &[run.id], |_| {})
        .await
        .expect("train");
    assert!(champion(&app, id).await.is_some());
    // Nothing new since: the next night queues nothing.
    let detail = scheduler::fire(&bg, JobKind::Retrain, Utc::now() + Days::days(1))
        .await
        .expect("fire");
    assert!(detail.is_some_and(|d| d.contains("queued 0")));
}

#[tokio::test]
async fn two_replicas_run_each_firing_once_and_share_the_training() {
    let app = spawn_app_with(quick).await;
    let client = app.client().await;
    for i in 0..4 {
        let id = insert_sensor(&client, &format!("s{i}")).await;
        insert_readings(&client, id, &simulated_hourly(i, Utc::now(), 20)).await;
    }
    let (a, b) = (background(&app), background(&app));
    let tick = Utc::now();
    let (ra, rb) = tokio::join!(
        scheduler::fire(&a, JobKind::Retrain, tick),
        scheduler::fire(&b, JobKind::Retrain, tick)
    );
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert!(
        ra.is_some() != rb.is_some(),
        "exactly one replica runs the firing: {ra:?} {rb:?}"
    );
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(sql, &[])
                .await
                .expect("count")
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count("SELECT count(*) FROM job_runs").await, 1);
    assert_eq!(
        count("SELECT count(*) FROM training_runs").await,
        4,
        "one run per sensor"
    );

    // Both replicas' workers drain the queue; every run executes exactly once.
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let wa = tokio::spawn(scheduler::training_worker(a.clone(), stopped.clone()));
    let wb = tokio::spawn(scheduler::training_worker(b.clone(), stopped));
    for _ in 0..600 {
        if count("SELECT count(*) FROM training_runs WHERE status IN ('queued', 'running')").await
            == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wa.abort();
    wb.abort();
    assert_eq!(
        count("SELECT count(*) FROM training_runs WHERE status = 'succeeded'").await,
        4
    );
    assert_eq!(count("SELECT count(*) FROM model_versions").await, 4);
}

#[tokio::test]
async fn a_cron_firing_every_few_seconds_trains_and_promotes() {
    let (app, id) = app_with_sensor("cron-1", 20).await;
    let mut settings = (*app.settings).clone();
    settings.scheduler.retrain_enabled = true;
    settings.scheduler.retrain_cron = "*/2 * * * * *".into();
    settings.registry.poll_secs = 1;
    let cache = Arc::new(ForecastCache::new(settings.registry.serve_recheck_ms));
    let bg = Background::new(app.pool.clone(), Arc::new(settings), cache);
    let sched = Scheduler::start(bg).await.expect("scheduler");
    let mut promoted = false;
    for _ in 0..600 {
        if champion(&app, id).await.is_some() {
            promoted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sched.shutdown().await;
    assert!(promoted, "the cron job did not train the sensor");
    let client = app.client().await;
    let jobs: i64 = client
        .query_one(
            "SELECT count(*) FROM job_runs WHERE job = 'retrain' AND status = 'succeeded'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert!(jobs >= 1);
}

#[tokio::test]
async fn a_shutdown_during_a_fit_queues_its_run_again_and_the_next_worker_trains_it() {
    let (app, id) = app_with_sensor_and("shutdown-1", 30, |s| {
        s.registry.shutdown_grace_secs = 0;
        s.registry.poll_secs = 1;
    })
    .await;
    let client = app.client().await;
    let run_id = runs::enqueue(&client, id, Trigger::Manual, None)
        .await
        .expect("enqueue");
    let state = || async {
        let row = client
            .query_one(
                "SELECT status, claimed_by, started_at IS NULL FROM training_runs WHERE id = $1",
                &[&run_id],
            )
            .await
            .expect("run row");
        (
            row.get::<_, String>(0),
            row.get::<_, Option<String>>(1),
            row.get::<_, bool>(2),
        )
    };

    // This replica claims the run; the shutdown comes while it is fitting.
    let sched = Scheduler::start(background(&app)).await.expect("scheduler");
    let mut claimed = false;
    for _ in 0..3000 {
        if state().await.0 == "running" {
            claimed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        claimed,
        "the worker never claimed the run: {:?}",
        state().await
    );
    sched.shutdown().await;
    assert_eq!(
        state().await,
        ("queued".to_string(), None, true),
        "a run interrupted by the shutdown is queued again, unclaimed"
    );
    assert!(
        champion(&app, id).await.is_none(),
        "the given-up fit stored nothing"
    );

    // The next worker (another replica, or this one after a restart) trains it.
    let sched = Scheduler::start(background(&app)).await.expect("scheduler");
    let mut finished = false;
    for _ in 0..1200 {
        let (status, _, _) = state().await;
        if status != "queued" && status != "running" {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, _) = state().await;
    sched.shutdown().await;
    assert!(finished, "the queued run was not trained again");
    assert_eq!(status, "succeeded");
    assert_eq!(
        champion(&app, id).await.map(|c| c.run_id),
        Some(run_id),
        "the same run produced the champion"
    );
}

#[tokio::test]
async fn drift_after_a_move_indoors_triggers_an_early_retrain() {
    let app = spawn_app_with(quick).await;
    let client = app.client().await;
    let id = insert_sensor(&client, "moved").await;
    let now = Utc::now();
    let t0 = now - Days::days(2);
    // Outdoors until two days ago: train, and issue a forecast from then.
    insert_readings(&client, id, &simulated_hourly(3, t0, 30)).await;
    assert_eq!(train(&app, id, None).await.status, "succeeded");
    let res = app.get("/api/v1/sensors/moved/forecast").await;
    assert_eq!(res.status(), 200);
    // Then it was moved indoors: flat, dry air the model never saw.
    let indoor: Vec<_> = (1..48)
        .map(|h| (t0 + Days::hours(h), 22.0 + (h % 3) as f64 * 0.2))
        .collect();
    insert_readings(&client, id, &indoor).await;

    let bg = background(&app);
    let report = hygrocast::registry::monitor::run_once(&bg.pool, &bg.settings, &bg.cache)
        .await
        .expect("monitor");
    let week = report
        .scores
        .iter()
        .find(|s| s.sensor_id == id && s.window_hours == 168)
        .expect("7-day score");
    assert!(week.n >= 12, "scored points: {}", week.n);
    assert!(week.mase_1_24.is_some_and(|m| m > 1.0), "{week:?}");
    assert_eq!(report.drift_runs.len(), 1, "a drift retrain is queued");
    let (_, run_id) = report.drift_runs[0];
    let pool_client = app.pool.get().await.expect("client");
    let run = runs::get(&**pool_client, run_id).await.expect("run");
    assert_eq!(run.trigger, "drift");
    let events: i64 = client
        .query_one(
            "SELECT count(*) FROM drift_events WHERE sensor_id = $1",
            &[&id],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(events, 1);
    // Within the cool-down the rule does not fire again.
    let again = hygrocast::registry::monitor::run_once(&bg.pool, &bg.settings, &bg.cache)
        .await
        .expect("monitor");
    assert!(again.drift_runs.is_empty());
}

#[tokio::test]
async fn export_reproduces_a_runs_digest_and_reports_a_mismatch() {
    let (app, id) = app_with_sensor("export-me", 20).await;
    let run = train(&app, id, None).await;
    let url = common::conninfo(&app.db.pg_config);
    let export = |out: std::path::PathBuf| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hygrocast"))
            .env("HYGROCAST_DATABASE__URL", &url)
            .env("HYGROCAST_FORECAST__TRAIN_DAYS", "40")
            .args(["export", "--run", &run.id.to_string(), "--out"])
            .arg(out)
            .output()
            .expect("run export")
    };
    let dir = tempfile::tempdir().expect("dir");
    let out = export(dir.path().join("a.csv"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("digest verified"), "{stderr}");
    let csv = std::fs::read_to_string(dir.path().join("a.csv")).expect("csv");
    assert!(csv.starts_with("ts,value\n"));
    assert_eq!(csv.lines().count() as i32 - 1, run.data_rows.expect("rows"));

    // A late reading inside the run's window changes the data it saw: reported.
    let client = app.client().await;
    let late = run.data_first.expect("first") + Days::minutes(90);
    client
        .execute(
            "INSERT INTO readings (sensor_id, ts, value) VALUES ($1, $2, 99.0) ON CONFLICT (sensor_id, ts) DO UPDATE SET value = 99.0",
            &[&id, &late],
        )
        .await
        .expect("late reading");
    let out = export(dir.path().join("b.csv"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MISMATCH"));
}

/// The forecast's origin as served, and its model version.
async fn served_origin(app: &TestApp, sensor: &str) -> (String, i64) {
    let body = app
        .get_json(&format!("/api/v1/sensors/{sensor}/forecast?horizon=6h"))
        .await;
    (
        body["issued_at"].as_str().unwrap_or_default().to_owned(),
        body["model"]["version"].as_i64().unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_served_forecast_is_rechecked_at_once_after_local_changes_and_within_the_interval_after_others(
) {
    use hygrocast::domain::{SensorKind, SensorName};
    use hygrocast::sensors::{self, NewSensor};
    // An hour-long interval, so "not yet re-checked" does not depend on this machine's speed.
    let app = spawn_app_with(|s| {
        quick(s);
        s.registry.serve_recheck_ms = 3_600_000;
    })
    .await;
    let client = app.client().await;
    let new = NewSensor {
        name: SensorName::parse("recheck").expect("name"),
        kind: SensorKind::Humidity,
        unit: None,
        location: None,
    };
    let (sensor, token) = sensors::create(&client, &new).await.expect("sensor");
    let end = Utc::now() - Days::hours(6);
    insert_readings(&client, sensor.id, &simulated_hourly(5, end, 30)).await;
    assert_eq!(train(&app, sensor.id, None).await.status, "succeeded");
    let (first, _) = served_origin(&app, "recheck").await;

    // Written by another process (here: SQL): not seen until the interval passes.
    insert_readings(&client, sensor.id, &[(end + Days::hours(2), 55.0)]).await;
    let (cached, _) = served_origin(&app, "recheck").await;
    assert_eq!(cached, first, "trusted within serve_recheck_ms");

    // Posted through this process: seen by the next request.
    let ts = (end + Days::hours(4)).to_rfc3339();
    let res = app
        .http
        .post(app.url("/api/v1/readings"))
        .header("Authorization", format!("Bearer {}", token.expose()))
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"ts": "{ts}", "value": 56.0}}"#))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 200);
    let (after_post, _) = served_origin(&app, "recheck").await;
    assert_ne!(
        after_post, first,
        "a committed reading invalidates the forecast"
    );
    let after_post: DateTime<Utc> = after_post.parse().expect("rfc3339");
    // The origin is the step of the newest reading.
    assert!(after_post > end + Days::hours(3) && after_post <= end + Days::hours(4));

    // With 0, every request checks: another process's reading is seen at once.
    let app = spawn_app_with(|s| {
        quick(s);
        s.registry.serve_recheck_ms = 0;
    })
    .await;
    let client = app.client().await;
    let id = insert_sensor(&client, "always").await;
    insert_readings(&client, id, &simulated_hourly(5, end, 30)).await;
    assert_eq!(train(&app, id, None).await.status, "succeeded");
    let (first, _) = served_origin(&app, "always").await;
    insert_readings(&client, id, &[(end + Days::hours(2), 55.0)]).await;
    let (second, _) = served_origin(&app, "always").await;
    assert_ne!(second, first);
}

/// Copies every issued forecast of `sensor` `days` earlier, as if issued then.
async fn backdate_copy(client: &tokio_postgres::Client, sensor: i64, days: i32) -> u64 {
    client
        .execute(
            "INSERT INTO issued_forecasts (sensor_id, model_version_id, issued_at, target_ts, horizon, \
             value, lo80, hi80, lo95, hi95) \
             SELECT sensor_id, model_version_id, issued_at - make_interval(days => $2), \
                    target_ts - make_interval(days => $2), horizon, value, lo80, hi80, lo95, hi95 \
             FROM issued_forecasts WHERE sensor_id = $1 AND issued_at > now() - interval '1 day'",
            &[&sensor, &days],
        )
        .await
        .expect("backdate")
}

/// The one bigint a query returns.
async fn one_i64(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> i64 {
    client
        .query_one(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

async fn issued_count(client: &tokio_postgres::Client, sensor: i64) -> i64 {
    one_i64(
        client,
        "SELECT count(*) FROM issued_forecasts WHERE sensor_id = $1",
        &[&sensor],
    )
    .await
}

#[tokio::test]
async fn the_prune_job_deletes_issued_forecasts_past_their_retention_and_keeps_the_rest() {
    // Retention 30 days (the default). Two sensors, each with a forecast issued now, one
    // issued 20 days ago (kept) and one 45 days ago (its targets 40–45 days old: deleted).
    let (app, a) = app_with_sensor("kept-1", 30).await;
    assert_eq!(app.settings.retention.issued_forecast_days, 30);
    let client = app.client().await;
    let b = insert_sensor(&client, "kept-2").await;
    insert_readings(&client, b, &simulated_hourly(8, Utc::now(), 30)).await;
    for (sensor, name) in [(a, "kept-1"), (b, "kept-2")] {
        train(&app, sensor, Some(Algorithm::Ridge)).await;
        let res = app.get(&format!("/api/v1/sensors/{name}/forecast")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(backdate_copy(&client, sensor, 20).await, 120);
        assert_eq!(backdate_copy(&client, sensor, 45).await, 120);
        assert_eq!(issued_count(&client, sensor).await, 360);
    }

    let bg = background(&app);
    let detail = scheduler::fire(&bg, JobKind::Prune, Utc::now())
        .await
        .expect("fire")
        .expect("this replica ran the firing");
    assert!(detail.contains("deleted 240 issued forecasts"), "{detail}");
    for sensor in [a, b] {
        assert_eq!(issued_count(&client, sensor).await, 240);
        let oldest: DateTime<Utc> = client
            .query_one(
                "SELECT min(target_ts) FROM issued_forecasts WHERE sensor_id = $1",
                &[&sensor],
            )
            .await
            .expect("oldest")
            .get(0);
        assert!(oldest >= Utc::now() - Days::days(30), "{oldest}");
    }
    // A day later the 20-day-old forecast is still inside the retention.
    let again = scheduler::fire(&bg, JobKind::Prune, Utc::now() + Days::days(1))
        .await
        .expect("fire")
        .expect("ran");
    assert!(again.contains("deleted 0 issued forecasts"), "{again}");
    assert_eq!(issued_count(&client, a).await, 240);
}

#[tokio::test]
async fn hygrocast_prune_keeps_everything_when_retention_is_off() {
    let (app, id) = app_with_sensor("archive-1", 30).await;
    train(&app, id, Some(Algorithm::Ridge)).await;
    assert_eq!(
        app.get("/api/v1/sensors/archive-1/forecast").await.status(),
        200
    );
    let client = app.client().await;
    backdate_copy(&client, id, 400).await;
    let url = common::conninfo(&app.db.pg_config);
    // `hygrocast prune` with a retention of `keep_days`: (succeeded, stdout, stderr).
    let prune = |keep_days: &'static str| {
        let url = url.clone();
        async move {
            let keep = [("HYGROCAST_RETENTION__ISSUED_FORECAST_DAYS", keep_days)];
            hygrocast_cli(&url, &["prune"], &keep).await
        }
    };
    let (ok, stdout, stderr) = prune("0").await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("kept forever"), "{stdout}");
    assert_eq!(issued_count(&client, id).await, 240);

    // A retention inside the monitor's 7-day window is refused, naming the setting.
    let (ok, _, stderr) = prune("3").await;
    assert!(!ok);
    assert!(
        stderr.contains("retention.issued_forecast_days") && stderr.contains("at least 7"),
        "{stderr}"
    );

    let (ok, stdout, stderr) = prune("365").await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("deleted 120 issued forecasts"), "{stdout}");
    assert_eq!(issued_count(&client, id).await, 120);
}

/// The versions of a sensor that still hold their fitted model.
async fn versions_with_a_model(client: &tokio_postgres::Client, sensor: i64) -> Vec<i32> {
    client
        .query(
            "SELECT version FROM model_versions WHERE sensor_id = $1 AND model IS NOT NULL ORDER BY version",
            &[&sensor],
        )
        .await
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn the_prune_job_deletes_old_models_but_never_the_champions_nor_the_rollback_targets() {
    let (app, id) = app_with_sensor("archive-2", 30).await;
    // Six versions; an operator then promotes v2 and v3, so v3 serves and a rollback
    // would restore v2.
    let mut ids = Vec::new();
    for _ in 0..6 {
        let run = train(&app, id, Some(Algorithm::Ridge)).await;
        assert_eq!(run.status, "succeeded", "{:?}", run.error);
        ids.push(run.version_id.expect("a version"));
    }
    let mut client = app.pool.get().await.expect("client");
    versions::promote(&mut client, ids[1]).await.expect("v2");
    versions::promote(&mut client, ids[2]).await.expect("v3");

    // Keep the newest two: v5 and v6, plus v3 (champion) and v2 (rollback target).
    let mut settings = (*app.settings).clone();
    settings.retention.models_kept = 2;
    let report = retention::prune(&app.pool, &settings, Utc::now())
        .await
        .expect("prune");
    assert_eq!(report.models, 2, "{report}");
    assert!(report.model_bytes > 1000, "{report}");
    assert_eq!(versions_with_a_model(&client, id).await, [2, 3, 5, 6]);

    // The record of a pruned version stays, and says so.
    let res = app.get("/api/v1/sensors/archive-2/models").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    let versions_json = body["versions"].as_array().expect("versions");
    assert_eq!(versions_json.len(), 6, "every version is still listed");
    let pruned: Vec<i64> = versions_json
        .iter()
        .filter(|v| !v["model_pruned_at"].is_null())
        .filter_map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(pruned, [4, 1], "newest first");

    // The operator's list says which versions lost their model.
    let hygrocast = |args: Vec<String>| {
        let url = common::conninfo(&app.db.pg_config);
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_hygrocast"))
                .env("HYGROCAST_DATABASE__URL", &url)
                .args(args)
                .output()
                .expect("run hygrocast")
        })
    };
    let out = hygrocast(vec!["models".into(), "list".into()])
        .await
        .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("(model deleted)").count(), 2, "{stdout}");

    // Promoting a version without its model is refused with a message naming the setting.
    let out = hygrocast(vec!["models".into(), "promote".into(), ids[3].to_string()])
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("retention.models_kept"), "{stderr}");
    assert_eq!(champion(&app, id).await.map(|c| c.version), Some(3));

    // The rollback target kept its model: rolling back serves it.
    let back = versions::rollback(&mut client, "archive-2")
        .await
        .expect("rollback");
    assert_eq!(back.version, 2);
    let res = app.get("/api/v1/sensors/archive-2/forecast").await;
    assert_eq!(res.status(), 200);
    let forecast: serde_json::Value = res.json().await.expect("json");
    assert_eq!(forecast["model"]["version"], 2, "{forecast}");

    // Now v3 is the rollback target: a second prune finds nothing more to delete.
    let again = retention::prune(&app.pool, &settings, Utc::now())
        .await
        .expect("prune");
    assert_eq!((again.models, again.model_bytes), (0, 0), "{again}");
    assert_eq!(versions_with_a_model(&client, id).await, [2, 3, 5, 6]);

    // The schema itself refuses a champion without its model.
    let err = client
        .execute(
            "UPDATE model_versions SET model = NULL, model_pruned_at = now() WHERE sensor_id = $1 AND status = 'champion'",
            &[&id],
        )
        .await
        .expect_err("a champion keeps its model");
    assert!(
        err.to_string()
            .contains("model_versions_champion_has_model")
            || format!("{err:?}").contains("model_versions_champion_has_model"),
        "{err:?}"
    );
}

/// Two sensors with a queued manual run each, on an app with two training workers.
async fn two_sensors_queued() -> (TestApp, Vec<i64>) {
    let (app, a) = app_with_sensor_and("pair-1", 30, |s| {
        s.registry.training_workers = 2;
        s.registry.poll_secs = 1;
    })
    .await;
    let client = app.client().await;
    let b = insert_sensor(&client, "pair-2").await;
    insert_readings(&client, b, &simulated_hourly(9, Utc::now(), 30)).await;
    let mut ids = Vec::new();
    for sensor in [a, b] {
        ids.push(
            runs::enqueue(&client, sensor, Trigger::Manual, None)
                .await
                .expect("enqueue"),
        );
    }
    (app, ids)
}

/// When each succeeded run started and finished, oldest first.
async fn succeeded_spans(client: &tokio_postgres::Client) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    client
        .query(
            "SELECT started_at, finished_at FROM training_runs WHERE status = 'succeeded' ORDER BY id",
            &[],
        )
        .await
        .expect("runs")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Two runs' spans overlapped: one worker would have run them one after the other.
fn overlapped(spans: &[(DateTime<Utc>, DateTime<Utc>)]) -> bool {
    let ((a_start, a_end), (b_start, b_end)) = (spans[0], spans[1]);
    a_start < b_end && b_start < a_end
}

#[tokio::test]
async fn two_training_workers_train_two_sensors_at_once() {
    let (app, _) = two_sensors_queued().await;
    let client = app.client().await;
    let sched = Scheduler::start(background(&app)).await.expect("scheduler");
    for _ in 0..1200 {
        if succeeded_spans(&client).await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sched.shutdown().await;
    let spans = succeeded_spans(&client).await;
    assert_eq!(spans.len(), 2, "both runs succeeded");
    assert!(overlapped(&spans), "the runs did not overlap: {spans:?}");
}

#[tokio::test]
async fn hygrocast_train_all_uses_the_training_workers_too() {
    let (app, ids) = two_sensors_queued().await;
    let mut done = 0;
    let results = trainer::run_claimed(&app.pool, &app.settings, "cli", &ids, |_| done += 1)
        .await
        .expect("run");
    assert_eq!((results.len(), done), (2, 2));
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let spans = succeeded_spans(&app.client().await).await;
    assert!(overlapped(&spans), "the runs did not overlap: {spans:?}");
}

#[tokio::test]
async fn a_run_whose_champion_changed_while_it_fitted_is_kept_unpromoted() {
    let (app, id) = app_with_sensor("race-1", 30).await;
    // v1 and v2 naive: equal scores promote the newer, so v2 serves.
    let v1 = train(&app, id, Some(Algorithm::Naive)).await;
    train(&app, id, Some(Algorithm::Naive)).await;
    assert_eq!(champion(&app, id).await.map(|c| c.version), Some(2));
    let v1 = v1.version_id.expect("v1");

    // A third naive run would be promoted too; hold the sensor's lock so it waits at its
    // commit, after its fit, and replace the champion meanwhile, as an operator or another
    // run of the same sensor would.
    let client = app.client().await;
    let run_id = runs::enqueue(&client, id, Trigger::Manual, Some(Algorithm::Naive))
        .await
        .expect("enqueue");
    let mut holder = app.pool.get().await.expect("client");
    let tx = holder.transaction().await.expect("tx");
    versions::lock_sensor(&*tx, id).await.expect("lock");
    let run = tokio::spawn({
        let (pool, settings) = (app.pool.clone(), app.settings.clone());
        async move { trainer::run_claimed(&pool, &settings, "race", &[run_id], |_| {}).await }
    });
    let mut waiting = false;
    for _ in 0..600 {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
            )
            .await
            .expect("activity")
            .get(0);
        if n > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(waiting, "the run never reached its commit");
    versions::set_champion(&*tx, id, v1, "manual", "an operator's choice")
        .await
        .expect("promote v1");
    tx.commit().await.expect("commit");

    let results = run.await.expect("join").expect("run");
    let outcome = results[0].as_ref().expect("the run succeeded");
    assert!(!outcome.promoted, "{outcome:?}");
    assert!(
        outcome.reason.contains("champion changed to v1"),
        "{}",
        outcome.reason
    );
    assert_eq!(champion(&app, id).await.map(|c| c.version), Some(1));
    let v3 = versions::get(&client, outcome.version_id)
        .await
        .expect("v3");
    assert_eq!((v3.version, v3.status.as_str()), (3, "challenger"));
}

/// Queues a run for `sensor` directly (unlike `runs::enqueue`, which joins an already
/// queued one), as several triggers on several replicas could.
async fn queue_raw(client: &tokio_postgres::Client, sensor: i64) -> i64 {
    one_i64(
        client,
        "INSERT INTO training_runs (sensor_id, trigger) VALUES ($1, 'manual') RETURNING id",
        &[&sensor],
    )
    .await
}

async fn run_status(client: &tokio_postgres::Client, run: i64) -> (String, Option<String>) {
    let row = client
        .query_one(
            "SELECT status, error FROM training_runs WHERE id = $1",
            &[&run],
        )
        .await
        .expect("run");
    (row.get(0), row.get(1))
}

async fn claim(client: &tokio_postgres::Client, instance: &str) -> Option<(i64, i64)> {
    runs::claim_next(client, instance, None)
        .await
        .expect("claim")
        .map(|r| (r.id, r.sensor_id))
}

#[tokio::test]
async fn claims_pass_over_a_sensor_that_is_being_trained() {
    let (app, a) = app_with_sensor("busy-1", 3).await;
    let client = app.client().await;
    let b = insert_sensor(&client, "busy-2").await;
    let (a1, a2, b1) = (
        queue_raw(&client, a).await,
        queue_raw(&client, a).await,
        queue_raw(&client, b).await,
    );
    assert_eq!(claim(&client, "w1").await, Some((a1, a)));
    // a2 is older than b1, but its sensor is being trained.
    assert_eq!(claim(&client, "w2").await, Some((b1, b)));
    assert_eq!(claim(&client, "w3").await, None);
    runs::mark_failed(&client, a1, "done")
        .await
        .expect("finish");
    assert_eq!(claim(&client, "w3").await, Some((a2, a)));
}

#[tokio::test]
async fn concurrent_claims_start_one_run_per_sensor() {
    let (app, a) = app_with_sensor("many-1", 3).await;
    let client = app.client().await;
    for _ in 0..8 {
        queue_raw(&client, a).await;
    }
    let claims = (0..8).map(|i| {
        let pool = app.pool.clone();
        async move {
            let client = pool.get().await.expect("client");
            runs::claim_next(&**client, &format!("w{i}"), None).await
        }
    });
    let claimed = futures_util::future::join_all(claims).await;
    let won: Vec<_> = claimed
        .into_iter()
        .filter_map(|c| c.expect("a claim never fails"))
        .collect();
    assert_eq!(won.len(), 1, "{won:?}");
    let running = one_i64(
        &client,
        "SELECT count(*) FROM training_runs WHERE status = 'running'",
        &[],
    )
    .await;
    assert_eq!(running, 1);
}

#[tokio::test]
async fn a_run_whose_process_died_loses_its_lease_and_its_sensor_is_trained_again() {
    let (app, a) = app_with_sensor("lease-1", 3).await;
    let client = app.client().await;
    let dead = queue_raw(&client, a).await;
    let next = queue_raw(&client, a).await;
    assert_eq!(claim(&client, "gone").await, Some((dead, a)));
    // Within its lease the run is left alone and its sensor waits.
    let within = runs::LEASE_SECS - 30;
    client
        .execute(
            "UPDATE training_runs SET heartbeat_at = now() - make_interval(secs => $2) WHERE id = $1",
            &[&dead, &(within as f64)],
        )
        .await
        .expect("age");
    assert_eq!(claim(&client, "alive").await, None);
    assert_eq!(run_status(&client, dead).await.0, "running");
    // Its process stopped beating longer ago than the lease: closed, and the next run of
    // its sensor is claimed in the same call.
    client
        .execute(
            "UPDATE training_runs SET heartbeat_at = now() - make_interval(secs => $2) WHERE id = $1",
            &[&dead, &((runs::LEASE_SECS + 30) as f64)],
        )
        .await
        .expect("age");
    assert_eq!(claim(&client, "alive").await, Some((next, a)));
    let (status, error) = run_status(&client, dead).await;
    assert_eq!(status, "failed");
    assert!(error.unwrap_or_default().contains("abandoned"));
}

#[tokio::test]
async fn a_heartbeat_renews_the_lease_until_it_is_dropped() {
    let (app, a) = app_with_sensor("beat-1", 3).await;
    let client = app.client().await;
    let run = queue_raw(&client, a).await;
    claim(&client, "w").await.expect("claimed");
    let set_old = "UPDATE training_runs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1";
    let beat_age =
        "SELECT extract(epoch FROM now() - heartbeat_at)::float8 FROM training_runs WHERE id = $1";
    client.execute(set_old, &[&run]).await.expect("age");
    let beat = runs::Heartbeat::start(app.pool.clone(), run, Duration::from_millis(100));
    // Beats every 100 ms; a loaded machine gets 10 s to show the first.
    let mut secs = f64::INFINITY;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        secs = client
            .query_one(beat_age, &[&run])
            .await
            .expect("age")
            .get(0);
        if secs < 60.0 {
            break;
        }
    }
    assert!(
        secs < 60.0,
        "the heartbeat did not renew the lease: {secs} s old"
    );
    drop(beat);
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.execute(set_old, &[&run]).await.expect("age");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let secs: f64 = client
        .query_one(beat_age, &[&run])
        .await
        .expect("age")
        .get(0);
    assert!(
        secs > 3000.0,
        "a dropped heartbeat still beats: {secs} s old"
    );
}

#[tokio::test]
async fn hygrocast_train_waits_for_a_sensor_another_process_is_training() {
    let (app, a) = app_with_sensor("wait-1", 30).await;
    let client = app.client().await;
    let other = queue_raw(&client, a).await;
    assert_eq!(claim(&client, "server").await, Some((other, a)));
    let mine = runs::enqueue(&client, a, Trigger::Manual, Some(Algorithm::Naive))
        .await
        .expect("enqueue");
    let cli = tokio::spawn({
        let (pool, settings) = (app.pool.clone(), app.settings.clone());
        async move { trainer::run_claimed(&pool, &settings, "cli", &[mine], |_| {}).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!cli.is_finished(), "the CLI gave up on a run still queued");
    assert_eq!(run_status(&client, mine).await.0, "queued");
    runs::mark_failed(&client, other, "the server's fit ended")
        .await
        .expect("finish");
    let results = tokio::time::timeout(Duration::from_secs(120), cli)
        .await
        .expect("the CLI went on once the sensor was free")
        .expect("join")
        .expect("run");
    assert_eq!(results.len(), 1);
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(run_status(&client, mine).await.0, "succeeded");
}

#[tokio::test]
async fn the_models_api_pages_through_a_sensors_versions() {
    let (app, id) = app_with_sensor("pages-1", 30).await;
    for _ in 0..5 {
        train(&app, id, Some(Algorithm::Naive)).await;
    }
    let numbers = |page: &serde_json::Value| -> Vec<i64> {
        page["versions"]
            .as_array()
            .map(|v| v.iter().filter_map(|v| v["version"].as_i64()).collect())
            .unwrap_or_default()
    };
    let all = app.get_json("/api/v1/sensors/pages-1/models").await;
    assert_eq!(numbers(&all), [5, 4, 3, 2, 1]);
    assert!(all["next_before"].is_null(), "{}", all["next_before"]);

    let mut seen = Vec::new();
    let mut path = "/api/v1/sensors/pages-1/models?limit=2".to_string();
    for _ in 0..5 {
        let page = app.get_json(&path).await;
        seen.extend(numbers(&page));
        match page["next_before"].as_i64() {
            Some(before) => {
                path = format!("/api/v1/sensors/pages-1/models?limit=2&before={before}")
            }
            None => break,
        }
    }
    assert_eq!(seen, [5, 4, 3, 2, 1]);

    for bad in [
        "limit=0",
        "limit=1001",
        "limit=two",
        "before=0",
        "before=-3",
    ] {
        let res = app
            .get(&format!("/api/v1/sensors/pages-1/models?{bad}"))
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn the_promotions_api_pages_through_every_change_of_champion() {
    let (app, id) = app_with_sensor("history-1", 30).await;
    // Another sensor's promotion must not show in this one's history.
    let other = insert_sensor(&app.client().await, "history-2").await;
    insert_readings(
        &app.client().await,
        other,
        &simulated_hourly(8, Utc::now(), 30),
    )
    .await;
    train(&app, other, Some(Algorithm::Naive)).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let run = train(&app, id, Some(Algorithm::Naive)).await;
        ids.push(run.version_id.expect("a version"));
    }
    // The first run was promoted automatically, the second only if it scored better; an
    // operator then flips between the two versions four times.
    let mut client = app.pool.get().await.expect("client");
    let mut current = champion(&app, id).await.expect("a champion").id;
    let mut expected = vec![ids[0]];
    if current == ids[1] {
        expected.push(ids[1]);
    }
    for _ in 0..4 {
        current = if current == ids[0] { ids[1] } else { ids[0] };
        versions::promote(&mut client, current)
            .await
            .expect("promote");
        expected.push(current);
    }
    let version_of = |vid: i64| if vid == ids[0] { 1 } else { 2 };
    let expected: Vec<i64> = expected.into_iter().rev().map(version_of).collect();
    let to_versions = |page: &serde_json::Value| -> Vec<i64> {
        page["promotions"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["to_version"].as_i64()).collect())
            .unwrap_or_default()
    };
    let all = app.get_json("/api/v1/sensors/history-1/promotions").await;
    assert_eq!(to_versions(&all), expected);
    assert!(all["next_before"].is_null(), "{}", all["next_before"]);

    let mut seen = Vec::new();
    let mut path = "/api/v1/sensors/history-1/promotions?limit=2".to_string();
    for _ in 0..5 {
        let page = app.get_json(&path).await;
        assert!(
            page["promotions"].as_array().map_or(0, Vec::len) <= 2,
            "{page}"
        );
        seen.extend(to_versions(&page));
        match page["next_before"].as_i64() {
            Some(before) => {
                path = format!("/api/v1/sensors/history-1/promotions?limit=2&before={before}")
            }
            None => break,
        }
    }
    assert_eq!(seen, expected);
    // The models endpoint's newest promotions are the same history.
    let models = app.get_json("/api/v1/sensors/history-1/models").await;
    assert_eq!(to_versions(&models), expected);

    for bad in ["limit=0", "limit=1001", "before=0", "before=x"] {
        let res = app
            .get(&format!("/api/v1/sensors/history-1/promotions?{bad}"))
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    let res = app.get("/api/v1/sensors/nobody/promotions").await;
    assert_eq!(res.status(), 404);

    // `hygrocast models promotions`: the same history, one line per change, newest first.
    let url = common::conninfo(&app.db.pg_config);
    let args = [
        "models",
        "promotions",
        "--sensor",
        "history-1",
        "--limit",
        "3",
    ];
    let (ok, stdout, stderr) = hygrocast_cli(&url, &args, &[]).await;
    assert!(ok, "{stderr}");
    let to: Vec<String> = stdout
        .lines()
        .skip(1) // the header
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .collect();
    let newest: Vec<String> = expected.iter().take(3).map(|v| format!("v{v}")).collect();
    assert_eq!(to, newest, "{stdout}");
    assert!(stdout.contains("promoted by an operator"), "{stdout}");
    assert!(!stdout.contains("history-2"), "{stdout}");
    let (ok, _, stderr) = hygrocast_cli(&url, &["models", "promotions", "--limit", "0"], &[]).await;
    assert!(!ok);
    assert!(stderr.contains("--limit"), "{stderr}");
}

async fn readings_count(client: &tokio_postgres::Client, sensor: i64, older_than_days: i32) -> i64 {
    one_i64(
        client,
        "SELECT count(*) FROM readings WHERE sensor_id = $1 \
         AND ts < now() - make_interval(days => $2)",
        &[&sensor, &older_than_days],
    )
    .await
}

/// Runs the hygrocast binary on the test's database: (succeeded, stdout, stderr).
async fn hygrocast_cli(url: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let url = url.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hygrocast"))
            .env("HYGROCAST_DATABASE__URL", &url)
            .envs(env)
            .args(args)
            .output()
            .expect("run hygrocast")
    })
    .await
    .expect("join");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn readings_past_their_retention_are_deleted_in_batches_and_export_says_why() {
    let (app, id) = app_with_sensor("aged-1", 30).await;
    let run = train(&app, id, Some(Algorithm::Naive)).await;
    let client = app.client().await;
    let total = readings_count(&client, id, 0).await;
    let old = readings_count(&client, id, 20).await;
    assert!(old > 200 && total > old, "{old} of {total}");

    // Several batches, each its own statement, and nothing newer than the cutoff.
    let cutoff = Utc::now() - Days::days(25);
    let older_than_25 = readings_count(&client, id, 25).await;
    let deleted = retention::delete_readings_before(&client, id, cutoff, 7)
        .await
        .expect("delete");
    assert_eq!(deleted as i64, older_than_25);
    assert_eq!(readings_count(&client, id, 25).await, 0);
    assert_eq!(readings_count(&client, id, 0).await, total - older_than_25);

    let url = common::conninfo(&app.db.pg_config);
    let (ok, stdout, stderr) = hygrocast_cli(&url, &["prune"], &[]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("readings are kept forever"), "{stdout}");

    // Shorter than the history training reads: refused, naming both settings.
    let (ok, _, stderr) = hygrocast_cli(
        &url,
        &["prune"],
        &[("HYGROCAST_RETENTION__READINGS_DAYS", "20")],
    )
    .await;
    assert!(!ok);
    assert!(
        stderr.contains("retention.readings_days") && stderr.contains("forecast.train_days"),
        "{stderr}"
    );

    let short = &[
        ("HYGROCAST_RETENTION__READINGS_DAYS", "20"),
        ("HYGROCAST_FORECAST__TRAIN_DAYS", "20"),
    ];
    let (ok, stdout, stderr) = hygrocast_cli(&url, &["prune"], short).await;
    assert!(ok, "{stderr}");
    let expected = format!("deleted {} readings older than", old - older_than_25);
    assert!(stdout.contains(&expected), "{expected} in {stdout}");
    assert_eq!(readings_count(&client, id, 20).await, 0);
    assert!(readings_count(&client, id, 0).await > 0);

    // The run saw 30 days; its first 10 are gone, and export says so.
    let (ok, _, stderr) =
        hygrocast_cli(&url, &["export", "--run", &run.id.to_string()], short).await;
    assert!(!ok);
    assert!(
        stderr.contains("MISMATCH") && stderr.contains("retention.readings_days = 20"),
        "{stderr}"
    );
}

#[tokio::test]
async fn hygrocast_models_runs_lists_the_queue_and_why_runs_failed() {
    let (app, a) = app_with_sensor("runs-1", 30).await;
    train(&app, a, Some(Algorithm::Naive)).await;
    let client = app.client().await;
    let b = insert_sensor(&client, "runs-2").await;
    let failed = queue_raw(&client, b).await;
    assert_eq!(claim(&client, "host-b:1:ab").await, Some((failed, b)));
    runs::mark_failed(&client, failed, "the fit ran out of memory")
        .await
        .expect("fail");
    let running = queue_raw(&client, a).await;
    assert_eq!(claim(&client, "host-a:7:cd").await, Some((running, a)));
    queue_raw(&client, a).await;

    let url = common::conninfo(&app.db.pg_config);
    let (ok, all, stderr) = hygrocast_cli(&url, &["models", "runs"], &[]).await;
    assert!(ok, "{stderr}");
    for expected in [
        "succeeded",
        "queued",
        "on host-a:7:cd, heartbeat",
        "failed",
        "the fit ran out of memory",
    ] {
        assert!(all.contains(expected), "{expected} in\n{all}");
    }
    let (ok, only, stderr) = hygrocast_cli(
        &url,
        &["models", "runs", "--status", "failed", "--sensor", "runs-2"],
        &[],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(only.contains("the fit ran out of memory"), "{only}");
    assert!(
        !only.contains("succeeded") && !only.contains("runs-1"),
        "{only}"
    );

    let (ok, _, stderr) = hygrocast_cli(&url, &["models", "runs", "--status", "stuck"], &[]).await;
    assert!(!ok);
    assert!(stderr.contains("possible values"), "{stderr}");
}
