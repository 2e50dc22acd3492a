//! How numbers, times and durations are written on the pages.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::Ctx;

/// `2026-11-24 10:00` in the page's time zone, in a `<time>` element with the UTC instant.
pub fn time(ctx: &Ctx, ts: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
            (ts.with_timezone(&ctx.tz).format("%Y-%m-%d %H:%M"))
        }
    }
}

/// Like [`time`], but only `10:00` (or `Tue 10:00` when not today), for long tables.
pub fn short_time(ctx: &Ctx, ts: DateTime<Utc>) -> Markup {
    let local = ts.with_timezone(&ctx.tz);
    let today = ctx.now.with_timezone(&ctx.tz).date_naive() == local.date_naive();
    let text = if today {
        local.format("%H:%M").to_string()
    } else {
        local.format("%a %d %b %H:%M").to_string()
    };
    html! { time datetime=(ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) { (text) } }
}

/// "42 s", "5 min", "3 h", "2 d": how long ago, at a glance.
pub fn age(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{} min", secs / 60)
    } else if secs < 86_400 * 2 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} d", secs / 86_400)
    }
}

/// How far ahead a forecast step lies, in its own unit: "24 h", "96 h", "10 min", "90 min"
/// (never rounded, unlike [`age`]).
pub fn ahead(secs: i64) -> String {
    if secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

pub use crate::forecast::horizon_block;

/// A span of time in words: "1 hour", "6 hours", "48 hours", "5 days", "10 minutes".
/// Days only from three on, so two days read as the 48 hours people say.
pub fn span(secs: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs >= 3 * 86_400 && secs % 86_400 == 0 {
        plural(secs / 86_400, "day")
    } else if secs >= 3600 && secs % 3600 == 0 {
        plural(secs / 3600, "hour")
    } else if secs >= 60 && secs % 60 == 0 {
        plural(secs / 60, "minute")
    } else {
        plural(secs, "second")
    }
}

/// A number with `digits` decimals, or an en dash when missing or not finite.
pub fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "–".into(),
    }
}

/// A fraction as a percentage: 0.81 → "81 %".
pub fn pct(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{:.0} %", x * 100.0),
        _ => "–".into(),
    }
}

/// Milliseconds as "850 ms", "12.3 s" or "4 min 5 s".
pub fn duration_ms(ms: Option<i64>) -> String {
    match ms {
        None => "–".into(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// A metric out of a metrics JSON object (`null`, missing or non-numeric → `None`).
pub fn metric(metrics: &serde_json::Value, key: &str) -> Option<f64> {
    metrics.get(key).and_then(serde_json::Value::as_f64)
}

/// A status word as a coloured badge.
pub fn badge(status: &str) -> Markup {
    html! { span class={ "badge badge-" (status) } { (status) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(5), "5 s");
        assert_eq!(age(300), "5 min");
        assert_eq!(age(7200), "2 h");
        assert_eq!(age(86_400 * 3), "3 d");
        assert_eq!(age(-4), "0 s");
    }

    #[test]
    fn forecast_steps_ahead_keep_their_unit() {
        assert_eq!(ahead(3600), "1 h");
        assert_eq!(ahead(96 * 3600), "96 h");
        assert_eq!(ahead(600), "10 min");
        assert_eq!(ahead(5400), "90 min");
        assert_eq!(ahead(45), "45 s");
    }

    #[test]
    fn spans_in_words() {
        assert_eq!(span(3600), "1 hour");
        assert_eq!(span(2 * 86_400), "48 hours");
        assert_eq!(span(5 * 86_400), "5 days");
        assert_eq!(span(300), "5 minutes");
        assert_eq!(span(90), "90 seconds");
    }

    #[test]
    fn numbers_and_percentages() {
        assert_eq!(num(Some(1.23456), 2), "1.23");
        assert_eq!(num(Some(f64::NAN), 2), "–");
        assert_eq!(num(None, 1), "–");
        assert_eq!(pct(Some(0.806)), "81 %");
        assert_eq!(duration_ms(Some(12_345)), "12.3 s");
        assert_eq!(duration_ms(Some(245_000)), "4 min 5 s");
    }
}
