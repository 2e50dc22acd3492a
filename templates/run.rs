//! `/runs/{id}`: one training run — parameters, the data it saw, its backtest table and
//! the chart of backtest error by horizon.

use maud::{html, Markup};

use super::chart::horizon_chart;
use super::format::{badge, duration_ms, horizon_block, metric, num, pct, time};
use super::layout::{page, Nav};
use super::Ctx;
use crate::registry::runs::RunRecord;
use crate::registry::versions::VersionRecord;

/// `version`: the model version the run produced, if any.
pub fn run(ctx: &Ctx, r: &RunRecord, unit: &str, version: Option<&VersionRecord>) -> Markup {
    let candidates: Vec<(String, serde_json::Value)> = r
        .metrics
        .as_ref()
        .and_then(|m| m.get("candidates"))
        .and_then(|c| c.as_array())
        .map(|cands| {
            cands
                .iter()
                .map(|c| {
                    (
                        c.get("model")
                            .and_then(|m| m.as_str())
                            .unwrap_or("?")
                            .to_string(),
                        c.get("metrics").cloned().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let chosen = r
        .metrics
        .as_ref()
        .and_then(|m| m.get("chosen"))
        .and_then(|c| c.as_str());
    let by_horizon: Vec<(String, Vec<f64>)> = candidates
        .iter()
        .map(|(name, m)| {
            let v = m
                .get("mae_by_horizon")
                .and_then(|a| a.as_array())
                .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
                .unwrap_or_default();
            (name.clone(), v)
        })
        .collect();
    // The run's own grid, which may predate a change of `forecast.step_secs`.
    let step_secs = r.step_secs.map_or(ctx.step_secs, i64::from);
    let (first_block, long_block) = (horizon_block(24, step_secs), horizon_block(120, step_secs));
    let title = format!("Run {} of {}", r.id, r.sensor);
    page(
        ctx,
        &title,
        Nav::Models,
        html! {
            nav.crumbs aria-label="Breadcrumb" {
                a href=(ctx.url("/models")) { "Models" } " › "
                a href=(ctx.url(&format!("/sensors/{}", r.sensor))) { (r.sensor) } " › "
                span aria-current="page" { "run " (r.id) }
            }
            h1 { "Training run " (r.id) " " span.muted { "of " (r.sensor) } }
            dl.facts {
                dt { "Status" } dd { (badge(&r.status)) @if let Some(e) = &r.error { " " span.error-text { (e) } } }
                @if r.status == "running" {
                    @if let Some(by) = &r.claimed_by { dt { "Running on" } dd { (by) } }
                    @if let Some(t) = r.heartbeat_at {
                        dt { "Last heartbeat" }
                        dd {
                            (time(ctx, t)) " "
                            span.muted { "(renewed every 30 s; a run without one for 3 minutes is closed as abandoned)" }
                        }
                    }
                }
                dt { "Trigger" } dd { (r.trigger) }
                @if let Some(req) = &r.requested { dt { "Requested model" } dd { (req) } }
                dt { "Chosen model" } dd { (r.algorithm.as_deref().unwrap_or("–")) }
                dt { "Version" } dd {
                    @if let Some(v) = version {
                        "v" (v.version) " " (badge(&v.status))
                        @if !v.status_reason.is_empty() { " " span.muted { (v.status_reason) } }
                    } @else { "none" }
                }
                dt { "Queued" } dd { (time(ctx, r.queued_at)) }
                @if let Some(t) = r.started_at { dt { "Started" } dd { (time(ctx, t)) } }
                @if let Some(t) = r.finished_at { dt { "Finished" } dd { (time(ctx, t)) } }
                dt { "Duration" } dd { (duration_ms(r.duration_ms)) }
            }
            section aria-labelledby="data-h" {
                h2 #data-h { "Data snapshot" }
                p.muted { "The exact resampled series this run trained on; " code { "hygrocast export" } " writes it out and checks the digest." }
                dl.facts #data-snapshot {
                    dt { "Range" } dd {
                        @match (r.data_first, r.data_last) {
                            (Some(a), Some(b)) => { (time(ctx, a)) " – " (time(ctx, b)) }
                            _ => "–",
                        }
                    }
                    dt { "Rows" } dd { (r.data_rows.map_or("–".to_string(), |n| n.to_string())) }
                    dt { "Step" } dd { (r.step_secs.map_or("–".to_string(), |s| format!("{s} s"))) }
                    dt { "SHA-256 digest" } dd { code.digest { (r.data_digest.as_deref().unwrap_or("–")) } }
                }
            }
            section aria-labelledby="params-h" {
                h2 #params-h { "Parameters" }
                @match &r.params {
                    Some(serde_json::Value::Object(map)) if !map.is_empty() => {
                        dl.facts.params {
                            @for (k, v) in map {
                                dt { (k) } dd { code { (v.to_string()) } }
                            }
                        }
                    }
                    Some(v) if !v.is_null() => pre { (v.to_string()) },
                    _ => p.empty { "None recorded." },
                }
            }
            section aria-labelledby="backtest-h" {
                h2 #backtest-h { "Backtest" }
                @if candidates.is_empty() {
                    p.empty { "No backtest recorded." }
                } @else {
                    div.table-wrap {
                        table #backtest-table {
                            thead { tr {
                                th scope="col" { "Model" }
                                @for metric in ["MASE", "MAE", "RMSE"] {
                                    th scope="col" class="num" { (metric) " " (first_block) } th scope="col" class="num" { (metric) " " (long_block) }
                                }
                                th scope="col" class="num" { "80 % cov." } th scope="col" class="num" { "95 % cov." }
                                th scope="col" class="num" { "Fit (s)" } th scope="col" class="num" { "Origins" }
                            } }
                            tbody {
                                @for (name, m) in &candidates {
                                    tr class=[(Some(name.as_str()) == chosen).then_some("chosen")] {
                                        th scope="row" { (name) @if Some(name.as_str()) == chosen { " " span.badge.badge-champion { "chosen" } } }
                                        td.num { (num(metric(m, "mase_1_24"), 3)) }
                                        td.num { (num(metric(m, "mase_1_120"), 3)) }
                                        td.num { (num(metric(m, "mae_1_24"), 2)) }
                                        td.num { (num(metric(m, "mae_1_120"), 2)) }
                                        td.num { (num(metric(m, "rmse_1_24"), 2)) }
                                        td.num { (num(metric(m, "rmse_1_120"), 2)) }
                                        td.num { (pct(metric(m, "coverage_80"))) }
                                        td.num { (pct(metric(m, "coverage_95"))) }
                                        td.num { (num(metric(m, "fit_seconds"), 3)) }
                                        td.num { (num(metric(m, "origins"), 0)) }
                                    }
                                }
                            }
                        }
                    }
                    h3 { "Backtest error by horizon" }
                    figure.chart-box {
                        (horizon_chart(&by_horizon, &format!("MAE ({unit})"), step_secs))
                    }
                }
            }
        },
    )
}
