//! SVG charts drawn on the server: the history + forecast chart of a sensor page, the
//! dashboard's sparklines and the backtest error-by-horizon chart of a run page.
//!
//! Coordinates are computed here and written with one decimal; styling (colours, line
//! widths) lives in the stylesheet through classes, so the charts follow the page's
//! light or dark scheme. Missing data is never drawn as a line: a polyline is broken
//! wherever consecutive points are further apart than one step.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use maud::{html, Markup, PreEscaped};

/// One forecast step as the chart needs it.
#[derive(Debug, Clone, Copy)]
pub struct BandPoint {
    pub ts: i64,
    pub value: f64,
    pub lo80: f64,
    pub hi80: f64,
    pub lo95: f64,
    pub hi95: f64,
}

/// Everything the sensor chart draws.
#[derive(Debug, Clone)]
pub struct ForecastChart<'a> {
    /// (unix seconds, value): one point per `history_step`; missing steps are gaps.
    pub history: &'a [(i64, f64)],
    pub history_step: i64,
    pub forecast: &'a [BandPoint],
    /// Left edge of the chart (unix seconds).
    pub start: i64,
    pub now: i64,
    /// Physical bounds of the quantity (0–100 for %RH): the y axis never goes past them.
    pub bounds: (f64, f64),
    pub unit: &'a str,
    pub tz: Tz,
    /// Accessible description of the chart.
    pub description: String,
}

const W: f64 = 960.0;
const H: f64 = 380.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 44.0;

/// Maps data coordinates to the plot area.
struct Scale {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Scale {
    fn x(&self, v: f64) -> f64 {
        let span = (self.x1 - self.x0).max(f64::EPSILON);
        self.left + (v - self.x0) / span * (self.right - self.left)
    }
    fn y(&self, v: f64) -> f64 {
        let span = (self.y1 - self.y0).max(f64::EPSILON);
        self.bottom - (v - self.y0) / span * (self.bottom - self.top)
    }
}

/// "Nice" tick step for a span: 1, 2, 2.5 or 5 × 10^k giving at most `max_ticks` ticks.
pub fn nice_step(span: f64, max_ticks: usize) -> f64 {
    let span = if span.is_finite() && span > 0.0 {
        span
    } else {
        1.0
    };
    let raw = span / max_ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= raw {
            return m * mag;
        }
    }
    10.0 * mag
}

/// The y range: the data's extent padded, widened to whole ticks, kept within `bounds`.
fn y_range(values: impl Iterator<Item = f64>, bounds: (f64, f64)) -> (f64, f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        (lo, hi) = bounds;
    }
    if hi - lo < 2.0 {
        lo -= 1.0;
        hi += 1.0;
    }
    let pad = (hi - lo) * 0.05;
    let step = nice_step(hi - lo + 2.0 * pad, 6);
    let lo = ((lo - pad) / step).floor() * step;
    let hi = ((hi + pad) / step).ceil() * step;
    (lo.max(bounds.0), hi.min(bounds.1), step)
}

/// Time ticks aligned to whole local hours/days, at most about eight over the span.
pub fn time_ticks(start: i64, end: i64, tz: Tz) -> Vec<(i64, String)> {
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;
    let span = (end - start).max(1);
    let every = [
        HOUR,
        2 * HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        2 * DAY,
        7 * DAY,
        14 * DAY,
        30 * DAY,
    ]
    .into_iter()
    .find(|iv| span / iv <= 8)
    .unwrap_or(30 * DAY);
    let local = |t: i64| tz.timestamp_opt(t, 0).single();
    // First whole local hour at or after `start`: candidates are then one hour apart
    // (also across DST changes, which move by whole hours).
    let Some(first) = local(start) else {
        return Vec::new();
    };
    let into_hour = i64::from(first.minute()) * 60 + i64::from(first.second());
    let mut t = if into_hour == 0 {
        start
    } else {
        start - into_hour + HOUR
    };
    let mut ticks = Vec::new();
    while t <= end {
        if let Some(l) = local(t) {
            let days = l.date_naive().num_days_from_ce() as i64;
            let hit = if every < DAY {
                i64::from(l.hour()) % (every / HOUR) == 0
            } else if every == 30 * DAY {
                l.hour() == 0 && l.day() == 1
            } else if every == 7 * DAY || every == 14 * DAY {
                // Mondays (every other Monday for two weeks).
                l.hour() == 0
                    && l.weekday() == chrono::Weekday::Mon
                    && (every == 7 * DAY || (days / 7) % 2 == 0)
            } else {
                l.hour() == 0 && days % (every / DAY) == 0
            };
            if hit {
                let label = if every < DAY && l.hour() != 0 {
                    l.format("%H:%M").to_string()
                } else if every < DAY {
                    l.format("%a %-d").to_string()
                } else {
                    l.format("%-d %b").to_string()
                };
                ticks.push((t, label));
            }
        }
        t += HOUR;
    }
    ticks
}

/// An SVG path through `points`, broken wherever the time step exceeds `max_gap`.
/// A point with no neighbour is drawn as a dot (a round-capped zero-length segment).
fn gapped_path(points: impl Iterator<Item = (f64, f64, i64)>, max_gap: i64) -> String {
    let mut d = String::new();
    let mut prev: Option<i64> = None;
    let mut run = 0usize;
    for (x, y, t) in points {
        let continues = prev.is_some_and(|p| t - p <= max_gap);
        if continues {
            let _ = write!(d, "L{x:.1} {y:.1}");
            run += 1;
        } else {
            if run == 1 {
                d.push_str("h0.1");
            }
            let _ = write!(d, "M{x:.1} {y:.1}");
            run = 1;
        }
        prev = Some(t);
    }
    if run == 1 {
        d.push_str("h0.1");
    }
    d
}

/// The band between `lo` and `hi` as a closed path.
fn band_path(
    s: &Scale,
    pts: &[BandPoint],
    lo: fn(&BandPoint) -> f64,
    hi: fn(&BandPoint) -> f64,
) -> String {
    let mut d = String::new();
    for (i, p) in pts.iter().enumerate() {
        let _ = write!(
            d,
            "{}{:.1} {:.1}",
            if i == 0 { "M" } else { "L" },
            s.x(p.ts as f64),
            s.y(hi(p))
        );
    }
    for p in pts.iter().rev() {
        let _ = write!(d, "L{:.1} {:.1}", s.x(p.ts as f64), s.y(lo(p)));
    }
    if !d.is_empty() {
        d.push('Z');
    }
    d
}

/// The sensor page's chart: history, forecast with its 80 % and 95 % bands, "now".
pub fn forecast_chart(c: &ForecastChart) -> Markup {
    let end = c.forecast.last().map(|p| p.ts).unwrap_or(c.now).max(c.now);
    let history: Vec<(i64, f64)> = c
        .history
        .iter()
        .copied()
        .filter(|(t, v)| *t >= c.start && v.is_finite())
        .collect();
    let (y0, y1, ystep) = y_range(
        history
            .iter()
            .map(|p| p.1)
            .chain(c.forecast.iter().flat_map(|p| [p.lo95, p.hi95, p.value])),
        c.bounds,
    );
    let s = Scale {
        x0: c.start as f64,
        x1: end as f64,
        y0,
        y1,
        left: LEFT,
        right: W - RIGHT,
        top: TOP,
        bottom: H - BOTTOM,
    };
    let history_d = gapped_path(
        history.iter().map(|&(t, v)| (s.x(t as f64), s.y(v), t)),
        c.history_step,
    );
    // The forecast line starts at the last observation, so the two lines meet.
    let origin = history.last().copied();
    let forecast_d = {
        let pts = origin
            .into_iter()
            .chain(c.forecast.iter().map(|p| (p.ts, p.value)));
        let mut d = String::new();
        for (i, (t, v)) in pts.enumerate() {
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { "L" },
                s.x(t as f64),
                s.y(v)
            );
        }
        d
    };
    let band95 = band_path(&s, c.forecast, |p| p.lo95, |p| p.hi95);
    let band80 = band_path(&s, c.forecast, |p| p.lo80, |p| p.hi80);
    let now_x = s.x(c.now as f64);
    let mut yticks = Vec::new();
    let mut v = y0;
    while v <= y1 + ystep * 0.01 {
        yticks.push(v);
        v += ystep;
    }
    let xticks = time_ticks(c.start, end, c.tz);
    let empty = history.is_empty() && c.forecast.is_empty();
    html! {
        svg.chart #forecast-chart viewBox={ "0 0 " (W) " " (H) } role="img"
            aria-labelledby="chart-title chart-desc" preserveAspectRatio="xMidYMid meet" {
            title #chart-title { "History and forecast" }
            desc #chart-desc { (c.description) }
            g.grid {
                @for v in &yticks {
                    line x1=(fmt1(s.left)) x2=(fmt1(s.right)) y1=(fmt1(s.y(*v))) y2=(fmt1(s.y(*v))) {}
                }
                @for (t, _) in &xticks {
                    line x1=(fmt1(s.x(*t as f64))) x2=(fmt1(s.x(*t as f64))) y1=(fmt1(s.top)) y2=(fmt1(s.bottom)) {}
                }
            }
            g.axis.y-axis {
                @for v in &yticks {
                    text x=(fmt1(s.left - 6.0)) y=(fmt1(s.y(*v) + 4.0)) text-anchor="end" { (trim_num(*v)) }
                }
                text x="12" y=(fmt1((s.top + s.bottom) / 2.0)) text-anchor="middle"
                    transform={ "rotate(-90 12 " (fmt1((s.top + s.bottom) / 2.0)) ")" } { (c.unit) }
            }
            g.axis.x-axis {
                line x1=(fmt1(s.left)) x2=(fmt1(s.right)) y1=(fmt1(s.bottom)) y2=(fmt1(s.bottom)) {}
                @for (t, label) in &xticks {
                    text x=(fmt1(s.x(*t as f64))) y=(fmt1(s.bottom + 18.0)) text-anchor="middle" { (label) }
                }
            }
            @if !band95.is_empty() {
                path.band95 #band95 d=(band95) {}
                path.band80 #band80 d=(band80) {}
            }
            @if !history_d.is_empty() {
                path.history #history d=(history_d) {}
            }
            @if !forecast_d.is_empty() {
                path.forecast #forecast d=(forecast_d) {}
            }
            g.now-marker #now-marker {
                line x1=(fmt1(now_x)) x2=(fmt1(now_x)) y1=(fmt1(s.top)) y2=(fmt1(s.bottom)) {}
                text x=(fmt1(now_x)) y=(fmt1(s.top + 10.0)) text-anchor="middle" dx="-16" { "now" }
            }
            @if empty {
                text.empty x=(fmt1(W / 2.0)) y=(fmt1(H / 2.0)) text-anchor="middle" { "No readings in this period" }
            }
        }
    }
}

/// A small line of the last hours: `slots` are equally spaced, `None` is a gap.
pub fn sparkline(slots: &[Option<f64>], label: &str) -> Markup {
    const SW: f64 = 120.0;
    const SH: f64 = 28.0;
    let values: Vec<f64> = slots
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() {
        return html! { span.muted { "no data" } };
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi - lo < 1.0 {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let n = slots.len().max(2) - 1;
    let s = Scale {
        x0: 0.0,
        x1: n as f64,
        y0: lo,
        y1: hi,
        left: 1.0,
        right: SW - 1.0,
        top: 2.0,
        bottom: SH - 2.0,
    };
    let d = gapped_path(
        slots.iter().enumerate().filter_map(|(i, v)| {
            v.filter(|v| v.is_finite())
                .map(|v| (s.x(i as f64), s.y(v), i as i64))
        }),
        1,
    );
    html! {
        svg.sparkline viewBox={ "0 0 " (SW) " " (SH) } width=(SW) height=(SH) role="img" aria-label=(label) {
            path d=(d) {}
        }
    }
}

/// A line chart of several named series over horizons 1..n steps of `step_secs`
/// (backtest MAE by horizon).
pub fn horizon_chart(series: &[(String, Vec<f64>)], y_label: &str, step_secs: i64) -> Markup {
    let n = series.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    if n == 0 {
        return html! { p.muted { "No backtest errors recorded." } };
    }
    let (y0, y1, ystep) = y_range(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .chain([0.0]),
        (0.0, f64::INFINITY),
    );
    let ch = 300.0;
    let s = Scale {
        x0: 1.0,
        x1: n as f64,
        y0,
        y1,
        left: LEFT,
        right: W - RIGHT,
        top: TOP,
        bottom: ch - BOTTOM,
    };
    let xstep = nice_step(n as f64, 10).max(1.0) as usize;
    let mut yticks = Vec::new();
    let mut v = y0;
    while v <= y1 + ystep * 0.01 {
        yticks.push(v);
        v += ystep;
    }
    html! {
        svg.chart #backtest-chart viewBox={ "0 0 " (W) " " (ch) } role="img" aria-labelledby="bt-title" {
            title #bt-title { "Backtest " (y_label) " by forecast horizon" }
            g.grid {
                @for v in &yticks {
                    line x1=(fmt1(s.left)) x2=(fmt1(s.right)) y1=(fmt1(s.y(*v))) y2=(fmt1(s.y(*v))) {}
                }
            }
            g.axis.y-axis {
                @for v in &yticks {
                    text x=(fmt1(s.left - 6.0)) y=(fmt1(s.y(*v) + 4.0)) text-anchor="end" { (trim_num(*v)) }
                }
                text x="12" y=(fmt1((s.top + s.bottom) / 2.0)) text-anchor="middle"
                    transform={ "rotate(-90 12 " (fmt1((s.top + s.bottom) / 2.0)) ")" } { (y_label) }
            }
            g.axis.x-axis {
                line x1=(fmt1(s.left)) x2=(fmt1(s.right)) y1=(fmt1(s.bottom)) y2=(fmt1(s.bottom)) {}
                @for h in (0..=n).step_by(xstep).filter(|h| *h >= 1) {
                    text x=(fmt1(s.x(h as f64))) y=(fmt1(s.bottom + 18.0)) text-anchor="middle" { (horizon_tick(h, xstep, step_secs)) }
                }
            }
            @for (i, (name, values)) in series.iter().enumerate() {
                path class={ "line s" (i % 6) } data-model=(name) d=(gapped_path(
                    values.iter().enumerate().filter(|(_, v)| v.is_finite())
                        .map(|(h, v)| (s.x(h as f64 + 1.0), s.y(*v), h as i64)),
                    1,
                )) {}
            }
        }
        ul.legend {
            @for (i, (name, _)) in series.iter().enumerate() {
                li { span class={ "swatch s" (i % 6) } {} (name) }
            }
        }
    }
}

/// The label of horizon `h` (steps of `step_secs`) on an axis with a tick every `every`
/// steps: how far ahead it is, in hours when every tick is a whole hour ("24 h"), else in
/// minutes ("100 min", "300 min") so that one axis does not mix units.
fn horizon_tick(h: usize, every: usize, step_secs: i64) -> String {
    let secs = h as i64 * step_secs;
    if (every as i64 * step_secs) % 3600 == 0 || step_secs % 60 != 0 {
        super::format::ahead(secs)
    } else {
        format!("{} min", secs / 60)
    }
}

fn fmt1(v: f64) -> PreEscaped<String> {
    PreEscaped(format!("{v:.1}"))
}

/// 40 → "40", 2.5 → "2.5".
fn trim_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Unix seconds of a timestamp (chart x coordinates).
pub fn secs(ts: DateTime<Utc>) -> i64 {
    ts.timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizon_ticks_keep_one_unit_per_axis() {
        // Hourly steps, a tick every 10: hours.
        assert_eq!(horizon_tick(120, 10, 3600), "120 h");
        // 5-minute steps, a tick every 20 (100 min): minutes even where a tick is whole hours.
        assert_eq!(horizon_tick(20, 20, 300), "100 min");
        assert_eq!(horizon_tick(60, 20, 300), "300 min");
        // 5-minute steps, a tick every 12 (1 h): hours.
        assert_eq!(horizon_tick(24, 12, 300), "2 h");
    }

    #[test]
    fn a_gap_breaks_the_line_and_a_lone_point_is_a_dot() {
        let pts = [
            (0.0, 0.0, 0),
            (1.0, 1.0, 10),
            (5.0, 5.0, 50),
            (9.0, 9.0, 90),
            (10.0, 1.0, 100),
        ];
        let d = gapped_path(pts.into_iter(), 10);
        assert_eq!(d, "M0.0 0.0L1.0 1.0M5.0 5.0h0.1M9.0 9.0L10.0 1.0");
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 6), 20.0);
        assert_eq!(nice_step(12.0, 6), 2.0);
        assert_eq!(nice_step(0.9, 6), 0.2);
        assert_eq!(nice_step(14.0, 6), 2.5);
    }

    #[test]
    fn y_range_stays_in_bounds_and_on_ticks() {
        let (lo, hi, step) = y_range([41.0, 77.0].into_iter(), (0.0, 100.0));
        assert!(lo <= 41.0 && hi >= 77.0 && lo >= 0.0 && hi <= 100.0);
        assert_eq!((lo / step).fract(), 0.0);
        let (lo, hi, _) = y_range([1.0, 99.5].into_iter(), (0.0, 100.0));
        assert_eq!((lo, hi), (0.0, 100.0));
    }

    #[test]
    fn time_ticks_fall_on_local_hours() {
        let tz: Tz = "Asia/Kolkata".parse().expect("tz");
        let start = Utc
            .with_ymd_and_hms(2026, 11, 24, 0, 0, 0)
            .single()
            .expect("t")
            .timestamp();
        let ticks = time_ticks(start, start + 86_400, tz);
        assert!(!ticks.is_empty() && ticks.len() <= 9, "{ticks:?}");
        for (t, _) in &ticks {
            let l = tz.timestamp_opt(*t, 0).single().expect("local");
            assert_eq!((l.minute(), l.hour() % 3), (0, 0), "{l}");
        }
        let week = time_ticks(start, start + 90 * 86_400, tz);
        assert!(week.len() <= 9 && week.len() >= 5, "{week:?}");
    }
}
