//! `/`: every sensor at a glance.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::chart::sparkline;
use super::format::{age, ahead, num, span};
use super::layout::{page, Nav};
use super::Ctx;

/// One dashboard row, read from what is stored (no model is run for the dashboard).
#[derive(Debug, Clone)]
pub struct SensorRow {
    pub name: String,
    pub kind: String,
    pub unit: String,
    pub location: Option<String>,
    pub last_ts: Option<DateTime<Utc>>,
    pub last_value: Option<f64>,
    /// Hourly means of the last 48 hours, oldest first; `None` where nothing arrived.
    pub spark: Vec<Option<f64>>,
    /// Lowest and highest point forecast of the next day (or of the whole forecast, when it
    /// is shorter), from the latest issued forecast.
    pub next: Option<(f64, f64)>,
    /// Champion version number, algorithm and whether it is a baseline.
    pub champion: Option<(i32, String, bool)>,
    pub backtest_mase: Option<f64>,
    /// Latest live 7-day MASE 1–24 h and the number of points it was scored on.
    pub live_mase: Option<f64>,
    pub live_n: Option<i32>,
}

/// How the dashboard orders its rows (`?sort=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Name,
    /// Stale or silent sensors first, then the worst live accuracy.
    Attention,
}

impl Sort {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("attention") => Sort::Attention,
            _ => Sort::Name,
        }
    }
}

/// `rows` are sorted by name; `filter` keeps those whose name or location contains it;
/// `next_secs` is how far ahead the "next" column's range reaches.
pub fn dashboard(
    ctx: &Ctx,
    rows: &[SensorRow],
    next_secs: i64,
    stale_after_secs: i64,
    filter: &str,
    sort: Sort,
) -> Markup {
    let now = ctx.now;
    let is_stale = |r: &SensorRow| {
        r.last_ts
            .map_or(true, |t| (now - t).num_seconds() > stale_after_secs)
    };
    let stale = rows.iter().filter(|r| is_stale(r)).count();
    let untrained = rows.iter().filter(|r| r.champion.is_none()).count();
    let needle = filter.trim().to_lowercase();
    let mut shown: Vec<&SensorRow> = rows
        .iter()
        .filter(|r| {
            needle.is_empty()
                || r.name.contains(&needle)
                || r.location
                    .as_deref()
                    .is_some_and(|l| l.to_lowercase().contains(&needle))
        })
        .collect();
    if sort == Sort::Attention {
        // Stable sort: ties stay in name order.
        shown.sort_by(|a, b| {
            let key = |r: &SensorRow| {
                let score = r.live_mase.or(r.backtest_mase).unwrap_or(0.0);
                (!is_stale(r), -score)
            };
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    let total = rows.len();
    page(
        ctx,
        "Dashboard",
        Nav::Dashboard,
        html! {
            h1 { "Sensors" }
            p.summary {
                (rows.len()) @if rows.len() == 1 { " sensor" } @else { " sensors" }
                @if stale > 0 { " · " span.stale { (stale) " stale" } }
                @if untrained > 0 { " · " (untrained) " without a trained model" }
            }
            @if rows.is_empty() {
                p.empty { "No sensors yet. Add one with " code { "hygrocast sensor add NAME" } "." }
            } @else {
                form.controls method="get" action=(ctx.url("/")) role="search" {
                    label for="q" { "Filter" }
                    input #q type="search" name="q" value=(filter) placeholder="name or location";
                    label for="sort" { "Sort by" }
                    select #sort name="sort" {
                        option value="name" selected[sort == Sort::Name] { "name" }
                        option value="attention" selected[sort == Sort::Attention] { "needs attention first" }
                    }
                    button type="submit" { "Apply" }
                    @if shown.len() != total { span.muted { "showing " (shown.len()) " of " (total) } }
                }
                div.table-wrap {
                    table.sensors #sensors {
                        caption.visually-hidden { "Sensors, their last reading, the last 48 hours, the next " (span(next_secs)) " and their model" }
                        thead {
                            tr {
                                th scope="col" { "Sensor" }
                                th scope="col" class="num" { "Last reading" }
                                th scope="col" { "Age" }
                                th scope="col" { "Last 48 h" }
                                th scope="col" class="num" { "Next " (ahead(next_secs)) }
                                th scope="col" { "Model" }
                                th scope="col" class="num" { abbr title=(format!("Live mean absolute scaled error, horizons {}, last 7 days (below 1 beats “same time yesterday”)", ctx.block(24))) { "Live MASE" } }
                            }
                        }
                        tbody {
                            @for r in &shown {
                                @let stale_row = is_stale(r);
                                tr class=[stale_row.then_some("is-stale")] {
                                    th scope="row" {
                                        a href=(ctx.url(&format!("/sensors/{}", r.name))) { (r.name) }
                                        @if let Some(loc) = &r.location { br; span.muted.small { (loc) } }
                                    }
                                    td.num {
                                        @if let Some(v) = r.last_value { (num(Some(v), 1)) " " span.unit { (r.unit) } } @else { "–" }
                                    }
                                    td {
                                        @match r.last_ts {
                                            Some(t) => {
                                                span title=(t.with_timezone(&ctx.tz).format("%Y-%m-%d %H:%M:%S %Z")) { (age((now - t).num_seconds())) " ago" }
                                                @if stale_row { " " span.badge.badge-stale { "stale" } }
                                            }
                                            None => { span.badge.badge-stale { "no data" } }
                                        }
                                    }
                                    td { (sparkline(&r.spark, &format!("{} over the last 48 hours", r.name))) }
                                    td.num {
                                        @if let Some((lo, hi)) = r.next { (num(Some(lo), 0)) "–" (num(Some(hi), 0)) " " span.unit { (r.unit) } } @else { "–" }
                                    }
                                    td {
                                        @if let Some((v, algo, baseline)) = &r.champion {
                                            (algo) " " span.muted { "v" (v) }
                                            @if *baseline { " " span.badge.badge-baseline { "baseline" } }
                                        } @else { span.muted { "not trained" } }
                                    }
                                    td.num {
                                        @if let Some(m) = r.live_mase {
                                            span class=(if m > 1.0 { "bad" } else { "good" }) title={ "scored on " (r.live_n.unwrap_or(0)) " points" } { (num(Some(m), 2)) }
                                        } @else if let Some(b) = r.backtest_mase {
                                            span.muted title="backtest (no live score yet)" { (num(Some(b), 2)) "*" }
                                        } @else { "–" }
                                    }
                                }
                            }
                        }
                    }
                }
                p.muted.small { "* backtest MASE, shown until live forecasts have been scored. Stale: no reading for more than " (age(stale_after_secs)) "." }
            }
        },
    )
}
