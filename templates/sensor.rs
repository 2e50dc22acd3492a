//! `/sensors/{name}`: the chart, the horizon selector, the forecast table, the model in
//! service, live accuracy and recent runs of one sensor.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::chart::{forecast_chart, sparkline, BandPoint, ForecastChart};
use super::format::{age, ahead, badge, duration_ms, metric, num, pct, short_time, span, time};
use super::layout::{page, Nav};
use super::models::{metric_cells, metric_headers};
use super::Ctx;
use crate::registry::monitor::LiveScore;
use crate::registry::runs::RunRecord;
use crate::registry::serving::ServedForecast;
use crate::registry::versions::{PromotionRecord, VersionRecord};

/// One choice of the horizon selector.
#[derive(Debug, Clone, PartialEq)]
pub struct HorizonChoice {
    /// The `?horizon=` value: "6h", "30m".
    pub query: String,
    /// "6 hours", "5 days".
    pub label: String,
    pub steps: usize,
}

/// The horizons the selector offers for forecasts of `horizon` steps of `step_secs`: one
/// step, 1, 6, 24 and 48 hours where they are whole numbers of steps within the forecast,
/// and the whole forecast (the default), shortest first. With the default hourly steps
/// and 120 of them: 1, 6, 24, 48 hours and 5 days.
pub fn horizon_choices(step_secs: i64, horizon: usize) -> Vec<HorizonChoice> {
    let step = step_secs.max(1);
    let whole = step.saturating_mul(horizon as i64);
    let mut secs: Vec<i64> = [step, 3600, 6 * 3600, 86_400, 2 * 86_400, whole]
        .into_iter()
        // The query is in minutes or hours (what `?horizon=` parses).
        .filter(|s| *s % step == 0 && *s <= whole && *s % 60 == 0)
        .collect();
    secs.sort_unstable();
    secs.dedup();
    secs.into_iter()
        .map(|s| HorizonChoice {
            query: if s % 3600 == 0 {
                format!("{}h", s / 3600)
            } else {
                format!("{}m", s / 60)
            },
            label: span(s),
            steps: (s / step) as usize,
        })
        .collect()
}

pub struct SensorView {
    pub name: String,
    pub kind: String,
    pub unit: String,
    pub location: Option<String>,
    pub bounds: (f64, f64),
    pub last: Option<(DateTime<Utc>, f64)>,
    pub stale_after_secs: i64,
    pub days: u32,
    /// The selector's choices and the selected one's query value (empty when the
    /// forecast's whole length cannot be written as one).
    pub horizons: Vec<HorizonChoice>,
    pub horizon: String,
    pub history: Vec<(i64, f64)>,
    pub history_step: i64,
    /// The forecast, or why there is none.
    pub forecast: Result<ServedForecast, String>,
    pub champion: Option<VersionRecord>,
    pub versions: Vec<VersionRecord>,
    pub promotions: Vec<PromotionRecord>,
    pub live: Vec<(DateTime<Utc>, LiveScore)>,
    pub runs: Vec<RunRecord>,
    /// A fixed message after an admin action ("retrain queued", …).
    pub notice: Option<&'static str>,
}

pub fn sensor(ctx: &Ctx, v: &SensorView) -> Markup {
    let base = format!("/sensors/{}", v.name);
    let forecast_pts: Vec<BandPoint> = match &v.forecast {
        Ok(f) => f
            .steps
            .iter()
            .map(|s| BandPoint {
                ts: s.ts.timestamp(),
                value: s.value,
                lo80: s.lo80,
                hi80: s.hi80,
                lo95: s.lo95,
                hi95: s.hi95,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let horizon_label = v
        .horizons
        .iter()
        .find(|c| c.query == v.horizon)
        .map_or(v.horizon.as_str(), |c| c.label.as_str());
    let chart = forecast_chart(&ForecastChart {
        history: &v.history,
        history_step: v.history_step,
        forecast: &forecast_pts,
        start: ctx.now.timestamp() - i64::from(v.days) * 86_400,
        now: ctx.now.timestamp(),
        bounds: v.bounds,
        unit: &v.unit,
        tz: ctx.tz,
        description: format!(
            "{} over the last {} days ({} points), and the forecast for the next {} with 80 % and 95 % prediction intervals.",
            v.name,
            v.days,
            v.history.len(),
            horizon_label
        ),
    });
    let live_168: Vec<Option<f64>> = v
        .live
        .iter()
        .rev()
        .filter(|(_, s)| s.window_hours == 168)
        .map(|(_, s)| s.mase_1_24)
        .collect();
    page(
        ctx,
        &v.name,
        Nav::None,
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href=(ctx.url("/")) { "Sensors" } " › " span aria-current="page" { (v.name) } }
            header.page-head {
                h1 { (v.name) }
                p.muted {
                    (v.kind) " · " (v.unit)
                    @if let Some(loc) = &v.location { " · " (loc) }
                }
                @if let Some((ts, value)) = v.last {
                    @let a = (ctx.now - ts).num_seconds();
                    p.now-reading {
                        span.big { (num(Some(value), 1)) " " (v.unit) }
                        " at " (time(ctx, ts)) " (" (age(a)) " ago)"
                        @if a > v.stale_after_secs { " " span.badge.badge-stale { "stale" } }
                    }
                } @else {
                    p.now-reading { span.badge.badge-stale { "no readings yet" } }
                }
            }
            @if let Some(n) = v.notice {
                p.notice role="status" { (n) }
            }
            section aria-labelledby="chart-h" {
                h2 #chart-h { "History and forecast" }
                form.controls method="get" action=(ctx.url(&base)) {
                    label for="horizon" { "Forecast horizon" }
                    select #horizon name="horizon" {
                        @for c in &v.horizons {
                            option value=(c.query) selected[c.query == v.horizon] { (c.label) }
                        }
                    }
                    label for="days" { "History (days)" }
                    input #days type="number" name="days" min="1" max=(crate::config::UiSettings::MAX_HISTORY_DAYS) value=(v.days) inputmode="numeric";
                    button type="submit" { "Show" }
                }
                figure.chart-box {
                    (chart)
                    figcaption {
                        ul.legend {
                            li { span.swatch.history {} "history (" (history_means(v.history_step)) ")" }
                            li { span.swatch.forecast {} "forecast" }
                            li { span.swatch.band80 {} "80 % interval" }
                            li { span.swatch.band95 {} "95 % interval" }
                            li { span.swatch.now {} "now" }
                        }
                    }
                }
            }
            section aria-labelledby="table-h" {
                h2 #table-h { "Forecast, next " (horizon_label) }
                @match &v.forecast {
                    Err(why) => p.empty { "No forecast: " (why) },
                    Ok(f) => {
                        p.muted {
                            "From " (f.model.algorithm)
                            @if let Some(ver) = f.model.version { " v" (ver) } @else { " (no trained model yet)" }
                            @if f.model.baseline { " " span.badge.badge-baseline { "baseline" } }
                            ", issued from the reading of " (time(ctx, f.issued_at)) "."
                        }
                        div.table-wrap.scroll {
                            table #forecast-table {
                                thead { tr {
                                    th scope="col" { "Time" }
                                    th scope="col" class="num" { "Ahead" }
                                    th scope="col" class="num" { "Forecast" }
                                    th scope="col" class="num" { "80 % interval" }
                                    th scope="col" class="num" { "95 % interval" }
                                } }
                                tbody {
                                    @for s in &f.steps {
                                        tr.forecast-row {
                                            td { (short_time(ctx, s.ts)) }
                                            td.num { (ahead((s.ts - f.issued_at).num_seconds())) }
                                            td.num { strong { (num(Some(s.value), 1)) } }
                                            td.num { (num(Some(s.lo80), 1)) "–" (num(Some(s.hi80), 1)) }
                                            td.num { (num(Some(s.lo95), 1)) "–" (num(Some(s.hi95), 1)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="model-h" {
                h2 #model-h { "Model in service" }
                @match &v.champion {
                    None => p.empty { "No trained model yet: forecasts come from the seasonal-naive baseline." },
                    Some(c) => {
                        dl.facts {
                            dt { "Model" } dd { (c.algorithm) " v" (c.version) @if c.baseline { " " span.badge.badge-baseline { "baseline" } } }
                            dt { "Since" } dd { (time(ctx, c.created_at)) }
                            dt { "Why" } dd { (c.status_reason) }
                            dt { "Backtest MASE " (ctx.block(24)) } dd { (num(metric(&c.metrics, "mase_1_24"), 3)) }
                            dt { "Backtest MASE " (ctx.block(120)) } dd { (num(metric(&c.metrics, "mase_1_120"), 3)) }
                            dt { "MAE " (ctx.block(24)) } dd { (num(metric(&c.metrics, "mae_1_24"), 2)) " " (v.unit) }
                            dt { "RMSE " (ctx.block(24)) } dd { (num(metric(&c.metrics, "rmse_1_24"), 2)) " " (v.unit) }
                            dt { "Interval coverage" } dd { "80 %: " (pct(metric(&c.metrics, "coverage_80"))) ", 95 %: " (pct(metric(&c.metrics, "coverage_95"))) }
                            dt { "Training run" } dd { a href=(ctx.url(&format!("/runs/{}", c.run_id))) { "run " (c.run_id) } }
                        }
                    }
                }
                @if ctx.admin.is_some() {
                    div.actions {
                        (ctx.admin_button(&format!("{base}/retrain"), "Retrain now", "primary"))
                        @if v.champion.is_some() {
                            (ctx.admin_button(&format!("{base}/rollback"), "Roll back to the previous champion", "danger"))
                        }
                    }
                }
            }
            section aria-labelledby="live-h" {
                h2 #live-h { "Live accuracy" }
                @if v.live.is_empty() {
                    p.empty { "Not scored yet: live forecasts are scored hourly once readings arrive for the hours they predicted." }
                } @else {
                    @if live_168.len() > 1 {
                        p { "7-day live MASE over time: " (sparkline(&live_168, "7-day live MASE over time")) }
                    }
                    div.table-wrap {
                        table #live-table {
                            thead { tr {
                                th scope="col" { "Scored" } th scope="col" class="num" { "Window" } th scope="col" class="num" { "Points" }
                                th scope="col" class="num" { "MAE " (ctx.block(24)) } th scope="col" class="num" { "MASE " (ctx.block(24)) }
                                th scope="col" class="num" { "80 % cov." } th scope="col" class="num" { "95 % cov." }
                            } }
                            tbody {
                                @for (at, s) in &v.live {
                                    tr {
                                        td { (time(ctx, *at)) }
                                        td.num { (s.window_hours) " h" }
                                        td.num { (s.n) }
                                        td.num { (num(s.mae_1_24, 2)) }
                                        td.num { (num(s.mase_1_24, 3)) }
                                        td.num { (pct(s.coverage_80)) }
                                        td.num { (pct(s.coverage_95)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="versions-h" {
                h2 #versions-h { "Model versions" }
                @if v.versions.is_empty() {
                    p.empty { "No versions yet." }
                } @else {
                    div.table-wrap {
                        table #versions-table {
                            thead { tr {
                                th scope="col" { "Version" } th scope="col" { "Model" } th scope="col" { "Status" }
                                @for h in metric_headers(ctx) { th scope="col" class="num" { (h) } }
                                th scope="col" { "Created" } th scope="col" { "Reason" }
                                @if ctx.admin.is_some() { th scope="col" { span.visually-hidden { "Actions" } } }
                            } }
                            tbody {
                                @for ver in &v.versions {
                                    tr {
                                        td { "v" (ver.version) }
                                        td { a href=(ctx.url(&format!("/runs/{}", ver.run_id))) { (ver.algorithm) } }
                                        td { (badge(&ver.status)) }
                                        (metric_cells(&ver.metrics))
                                        td { (time(ctx, ver.created_at)) }
                                        td.small { (ver.status_reason) }
                                        @if ctx.admin.is_some() {
                                            td {
                                                @if ver.model_pruned_at.is_some() {
                                                    span.small title="Deleted by retention.models_kept: this version can no longer be served" { "model deleted" }
                                                } @else if ver.status != "champion" {
                                                    (ctx.admin_button(&format!("/models/{}/promote", ver.id), "Promote", "small"))
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !v.promotions.is_empty() {
                    h3 { "Promotions and rollbacks" }
                    ul.events {
                        @for p in &v.promotions {
                            li {
                                (time(ctx, p.at)) " · " (badge(&p.kind)) " "
                                @if let Some(f) = p.from_version { "v" (f) " → " }
                                "v" (p.to_version) ": " (p.reason)
                            }
                        }
                    }
                }
            }
            section aria-labelledby="runs-h" {
                h2 #runs-h { "Recent training runs" }
                @if v.runs.is_empty() {
                    p.empty { "No training runs yet." }
                } @else {
                    div.table-wrap {
                        table #runs-table {
                            thead { tr {
                                th scope="col" { "Run" } th scope="col" { "Trigger" } th scope="col" { "Status" }
                                th scope="col" { "Model" } th scope="col" { "Queued" } th scope="col" class="num" { "Duration" }
                            } }
                            tbody {
                                @for r in &v.runs {
                                    tr {
                                        td { a href=(ctx.url(&format!("/runs/{}", r.id))) { (r.id) } }
                                        td { (r.trigger) }
                                        td { (badge(&r.status)) }
                                        td { (r.algorithm.as_deref().unwrap_or("–")) }
                                        td { (time(ctx, r.queued_at)) }
                                        td.num { (duration_ms(r.duration_ms)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// What one point of the history line is: "hourly mean", "mean per 6 hours".
fn history_means(bucket_secs: i64) -> String {
    match bucket_secs {
        3600 => "hourly mean".into(),
        86_400 => "daily mean".into(),
        s => format!("mean per {}", span(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queries_and_labels(step_secs: i64, horizon: usize) -> Vec<(String, String, usize)> {
        horizon_choices(step_secs, horizon)
            .into_iter()
            .map(|c| (c.query, c.label, c.steps))
            .collect()
    }

    fn owned(v: &[(&str, &str, usize)]) -> Vec<(String, String, usize)> {
        v.iter()
            .map(|(q, l, n)| (q.to_string(), l.to_string(), *n))
            .collect()
    }

    #[test]
    fn hourly_steps_offer_one_hour_to_five_days() {
        assert_eq!(
            queries_and_labels(3600, 120),
            owned(&[
                ("1h", "1 hour", 1),
                ("6h", "6 hours", 6),
                ("24h", "24 hours", 24),
                ("48h", "48 hours", 48),
                ("120h", "5 days", 120),
            ])
        );
    }

    #[test]
    fn the_choices_follow_the_configured_step_and_horizon() {
        // 120 steps of 5 minutes: nothing beyond the 10 hours there are.
        assert_eq!(
            queries_and_labels(300, 120),
            owned(&[
                ("5m", "5 minutes", 1),
                ("1h", "1 hour", 12),
                ("6h", "6 hours", 72),
                ("10h", "10 hours", 120),
            ])
        );
        // Daily steps: no hour that is not a whole day.
        assert_eq!(
            queries_and_labels(86_400, 10),
            owned(&[
                ("24h", "24 hours", 1),
                ("48h", "48 hours", 2),
                ("240h", "10 days", 10),
            ])
        );
    }
}
