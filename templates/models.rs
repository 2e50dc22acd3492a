//! `/models`: every training run and model version, and the promotion history.

use maud::{html, Markup};

use super::format::{badge, duration_ms, metric, num, pct, time};
use super::layout::{page, Nav};
use super::Ctx;
use crate::registry::runs::RunRecord;
use crate::registry::versions::{PromotionRecord, VersionRecord};

/// Column headers matching [`metric_cells`], the horizon blocks on this server's grid.
pub fn metric_headers(ctx: &Ctx) -> [String; 4] {
    [
        format!("MASE {}", ctx.block(24)),
        format!("MASE {}", ctx.block(120)),
        "80 % cov.".into(),
        "95 % cov.".into(),
    ]
}

/// The headline backtest metrics of a version or candidate as table cells.
pub fn metric_cells(m: &serde_json::Value) -> Markup {
    html! {
        td.num { (num(metric(m, "mase_1_24"), 3)) }
        td.num { (num(metric(m, "mase_1_120"), 3)) }
        td.num { (pct(metric(m, "coverage_80"))) }
        td.num { (pct(metric(m, "coverage_95"))) }
    }
}

/// The chosen candidate's metrics out of a run's backtest table.
pub fn chosen_metrics(run: &RunRecord) -> serde_json::Value {
    let Some(m) = &run.metrics else {
        return serde_json::Value::Null;
    };
    let chosen = m.get("chosen").and_then(|c| c.as_str());
    m.get("candidates")
        .and_then(|c| c.as_array())
        .and_then(|cands| {
            cands
                .iter()
                .find(|c| c.get("model").and_then(|x| x.as_str()) == chosen)
        })
        .and_then(|c| c.get("metrics"))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

pub fn models(
    ctx: &Ctx,
    runs: &[RunRecord],
    versions: &[VersionRecord],
    promotions: &[PromotionRecord],
) -> Markup {
    page(
        ctx,
        "Models",
        Nav::Models,
        html! {
            h1 { "Models" }
            nav.toc aria-label="On this page" {
                a href="#versions-h" { "Versions" } " · " a href="#runs-h" { "Training runs" } " · " a href="#promotions-h" { "Promotions" }
            }
            section aria-labelledby="versions-h" {
                h2 #versions-h { "Model versions" }
                @if versions.is_empty() {
                    p.empty { "No model versions yet." }
                } @else {
                    div.table-wrap {
                        table #versions-table {
                            thead { tr {
                                th scope="col" { "Sensor" } th scope="col" { "Version" } th scope="col" { "Model" } th scope="col" { "Status" }
                                @for h in metric_headers(ctx) { th scope="col" class="num" { (h) } }
                                th scope="col" { "Created" }
                                @if ctx.admin.is_some() { th scope="col" { span.visually-hidden { "Actions" } } }
                            } }
                            tbody {
                                @for v in versions {
                                    tr {
                                        td { a href=(ctx.url(&format!("/sensors/{}", v.sensor))) { (v.sensor) } }
                                        td { "v" (v.version) }
                                        td {
                                            a href=(ctx.url(&format!("/runs/{}", v.run_id))) { (v.algorithm) }
                                            @if v.baseline { " " span.badge.badge-baseline { "baseline" } }
                                        }
                                        td { (badge(&v.status)) }
                                        (metric_cells(&v.metrics))
                                        td { (time(ctx, v.created_at)) }
                                        @if ctx.admin.is_some() {
                                            td {
                                                @if v.status != "champion" {
                                                    (ctx.admin_button(&format!("/models/{}/promote", v.id), "Promote", "small"))
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="runs-h" {
                h2 #runs-h { "Training runs" }
                @if runs.is_empty() {
                    p.empty { "No training runs yet." }
                } @else {
                    div.table-wrap {
                        table #runs-table {
                            thead { tr {
                                th scope="col" { "Run" } th scope="col" { "Sensor" } th scope="col" { "Trigger" } th scope="col" { "Status" }
                                th scope="col" { "Model" }
                                @for h in metric_headers(ctx) { th scope="col" class="num" { (h) } }
                                th scope="col" { "Queued" } th scope="col" class="num" { "Duration" }
                            } }
                            tbody {
                                @for r in runs {
                                    tr {
                                        td { a href=(ctx.url(&format!("/runs/{}", r.id))) { (r.id) } }
                                        td { a href=(ctx.url(&format!("/sensors/{}", r.sensor))) { (r.sensor) } }
                                        td { (r.trigger) }
                                        td {
                                            (badge(&r.status))
                                            @if let Some(e) = &r.error { br; span.small.error-text { (e) } }
                                        }
                                        td { (r.algorithm.as_deref().unwrap_or("–")) }
                                        (metric_cells(&chosen_metrics(r)))
                                        td { (time(ctx, r.queued_at)) }
                                        td.num { (duration_ms(r.duration_ms)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="promotions-h" {
                h2 #promotions-h { "Promotions and rollbacks" }
                @if promotions.is_empty() {
                    p.empty { "None yet." }
                } @else {
                    div.table-wrap {
                        table #promotions-table {
                            thead { tr {
                                th scope="col" { "When" } th scope="col" { "Sensor" } th scope="col" { "Kind" }
                                th scope="col" { "From" } th scope="col" { "To" } th scope="col" { "Reason" }
                            } }
                            tbody {
                                @for p in promotions {
                                    tr {
                                        td { (time(ctx, p.at)) }
                                        td { a href=(ctx.url(&format!("/sensors/{}", p.sensor))) { (p.sensor) } }
                                        td { (badge(&p.kind)) }
                                        td { @if let Some(f) = p.from_version { "v" (f) } @else { "–" } }
                                        td { "v" (p.to_version) }
                                        td.small { (p.reason) }
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
