//! Encoders for the three ingestion formats, used by the simulator's poster and tests.
//! Each output parses back to exactly the same readings (see the round-trip tests).

use std::fmt::Write as _;

use chrono::SecondsFormat;
use serde_json::{Map, Value as Json};

use crate::domain::Reading;

/// Native JSON array: `[{"ts":"2026-11-24T10:00:00Z","value":54.2},…]`.
pub fn to_json_batch(readings: &[Reading]) -> String {
    let items: Vec<Json> = readings
        .iter()
        .map(|r| {
            let mut obj = Map::new();
            let ts = r.ts().to_rfc3339_opts(SecondsFormat::AutoSi, true);
            obj.insert("ts".into(), Json::from(ts));
            obj.insert("value".into(), Json::from(r.value()));
            Json::Object(obj)
        })
        .collect();
    Json::Array(items).to_string()
}

/// SenML pack. The first record carries `bn`, `bt` and `bu`; every record has
/// `n` = the kind's canonical quantity name and `t` relative to `bt`, so names resolve
/// to e.g. `urn:dev:hygrocast:kitchen:humidity`.
///
/// `base_name` gets a `:` appended unless empty or already ending in a separator.
/// Times are whole microseconds as seconds. Limitation of SenML itself: readings before
/// 1978-07-04 (2^28 s) cannot be written as absolute times and would parse as relative.
pub fn to_senml(base_name: &str, readings: &[Reading]) -> String {
    let Some(first) = readings.first() else {
        return "[]".to_owned();
    };
    let bn = if base_name.is_empty() || base_name.ends_with([':', '/', '.', '_', '-']) {
        base_name.to_owned()
    } else {
        format!("{base_name}:")
    };
    let bt_us = first.ts().timestamp_micros();
    let base_unit = first.kind().senml_unit();
    let records: Vec<Json> = readings
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut rec = Map::new();
            if i == 0 {
                rec.insert("bn".into(), Json::from(bn.as_str()));
                rec.insert("bt".into(), Json::from(micros_to_secs(bt_us)));
                rec.insert("bu".into(), Json::from(base_unit));
            } else if r.kind().senml_unit() != base_unit {
                rec.insert("u".into(), Json::from(r.kind().senml_unit()));
            }
            let name = r
                .kind()
                .quantity_names()
                .first()
                .copied()
                .unwrap_or("value");
            rec.insert("n".into(), Json::from(name));
            rec.insert("v".into(), Json::from(r.value()));
            let t_us = r.ts().timestamp_micros() - bt_us;
            if t_us != 0 {
                rec.insert("t".into(), Json::from(micros_to_secs(t_us)));
            }
            Json::Object(rec)
        })
        .collect();
    Json::Array(records).to_string()
}

fn micros_to_secs(us: i64) -> f64 {
    // Split so the integer part stays exact; only the sub-second part is divided.
    us.div_euclid(1_000_000) as f64 + us.rem_euclid(1_000_000) as f64 / 1e6
}

/// Line protocol, one `measurement value=<v> <ns>` line per reading, nanosecond precision
/// (the protocol default, so no `precision` parameter is needed). An empty measurement
/// becomes the reading's kind name, since line protocol requires one.
pub fn to_line_protocol(measurement: &str, readings: &[Reading]) -> String {
    let mut out = String::with_capacity(readings.len() * 48);
    for r in readings {
        let m = if measurement.is_empty() {
            r.kind().as_str()
        } else {
            measurement
        };
        out.push_str(&escape_measurement(m));
        // Reading guarantees its timestamp fits nanoseconds; the fallback is unreachable.
        let ns = r.ts().timestamp_nanos_opt().unwrap_or(i64::MAX);
        // f64 Display is the shortest string that parses back to the same value.
        let _ = writeln!(out, " value={} {ns}", r.value());
    }
    out
}

fn escape_measurement(m: &str) -> String {
    let mut s = String::with_capacity(m.len());
    for c in m.chars() {
        if matches!(c, ',' | ' ' | '\\') {
            s.push('\\');
        }
        // Newlines cannot be escaped in line protocol; a space keeps the line intact.
        s.push(if c == '\n' || c == '\r' { ' ' } else { c });
        if c == '\n' || c == '\r' {
            s.insert(s.len() - 1, '\\');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SensorKind;
    use crate::ingest::{json, line_protocol, senml, validate_batch, Precision, RawReading};
    use crate::simulate::HumiditySimulator;
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const H: SensorKind = SensorKind::Humidity;

    fn received() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap()
    }

    fn validated(kind: SensorKind, raw: Vec<RawReading>) -> Vec<Reading> {
        let b = validate_batch(kind, raw, received(), Duration::zero(), usize::MAX).unwrap();
        assert_eq!(b.duplicates, 0);
        b.readings
    }

    fn round_trip_json_formats(kind: SensorKind, readings: &[Reading]) {
        let j = to_json_batch(readings);
        let got = validated(kind, json::parse(j.as_bytes(), received()).unwrap());
        assert_eq!(got, readings, "json: {j}");

        let s = to_senml("urn:dev:hygrocast:test", readings);
        let got = validated(kind, senml::parse(s.as_bytes(), kind, received()).unwrap());
        assert_eq!(got, readings, "senml: {s}");
    }

    fn round_trip_line_protocol(kind: SensorKind, readings: &[Reading]) {
        let l = to_line_protocol("air, quality\\", readings);
        let got = validated(
            kind,
            line_protocol::parse(l.as_bytes(), kind, Precision::Ns, received()).unwrap(),
        );
        assert_eq!(got, readings, "line protocol: {l}");
    }

    fn round_trip_all(kind: SensorKind, readings: &[Reading]) {
        round_trip_json_formats(kind, readings);
        round_trip_line_protocol(kind, readings);
    }

    /// Random strictly increasing readings. With `decimals`, values are rounded to that
    /// many decimal places (what real sensors send); otherwise any f64 in range.
    fn random_readings(rng: &mut StdRng, kind: SensorKind, decimals: Option<i32>) -> Vec<Reading> {
        let n = rng.gen_range(1..40);
        let (lo, hi) = kind.valid_range();
        // 2000-01-01 .. 2035-01-01, whole microseconds (the resolution SenML/JSON
        // seconds keep and PostgreSQL stores).
        let mut us: i64 = rng.gen_range(946_684_800_000_000..2_051_222_400_000_000);
        (0..n)
            .map(|_| {
                us += rng.gen_range(1..10_000_000_000);
                let mut v = match rng.gen_range(0..6) {
                    0 => lo,
                    1 => hi,
                    2 => rng.gen_range(lo..hi).round(),
                    _ => rng.gen_range(lo..=hi),
                };
                if let Some(d) = decimals {
                    let scale = 10f64.powi(d);
                    v = (v * scale).round() / scale;
                }
                let ts = DateTime::from_timestamp_micros(us).unwrap();
                Reading::from_parts(kind, ts, v).unwrap()
            })
            .collect()
    }

    #[test]
    fn property_random_round_trips() {
        let mut rng = StdRng::seed_from_u64(0x6867_6320);
        for _ in 0..300 {
            let kind = if rng.gen_bool(0.8) {
                H
            } else {
                SensorKind::Temperature
            };
            let decimals = rng.gen_range(0..=6);
            let readings = random_readings(&mut rng, kind, Some(decimals));
            round_trip_all(kind, &readings);
        }
    }

    /// Line protocol uses Rust's correctly rounded float parser, so even 17-digit values
    /// survive. (The JSON formats are exact up to 15 significant digits: serde_json
    /// without its `float_roundtrip` feature may be 1 ulp off beyond that, see the note
    /// in `ingest::json`.)
    #[test]
    fn property_full_precision_line_protocol() {
        let mut rng = StdRng::seed_from_u64(0x6c70);
        for _ in 0..300 {
            let kind = if rng.gen_bool(0.8) {
                H
            } else {
                SensorKind::Temperature
            };
            let readings = random_readings(&mut rng, kind, None);
            round_trip_line_protocol(kind, &readings);
        }
    }

    #[test]
    fn simulator_output_round_trips() {
        let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let readings: Vec<_> = HumiditySimulator::new(9, start, 60).take(500).collect();
        round_trip_all(H, &readings);
    }

    #[test]
    fn json_shape() {
        let ts = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
        let r = [Reading::from_parts(H, ts, 54.2).unwrap()];
        assert_eq!(
            to_json_batch(&r),
            r#"[{"ts":"2026-11-24T10:00:00Z","value":54.2}]"#
        );
        assert_eq!(to_json_batch(&[]), "[]");
    }

    #[test]
    fn senml_shape() {
        let ts = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
        let r = [
            Reading::from_parts(H, ts, 54.2).unwrap(),
            Reading::from_parts(H, ts + Duration::milliseconds(60_500), 54.0).unwrap(),
        ];
        assert_eq!(
            to_senml("urn:dev:mac:0024befffe804ff1", &r),
            r#"[{"bn":"urn:dev:mac:0024befffe804ff1:","bt":1795514400.0,"bu":"%RH","n":"humidity","v":54.2},{"n":"humidity","t":60.5,"v":54.0}]"#
        );
        assert_eq!(to_senml("x", &[]), "[]");
        assert!(to_senml("", &r).starts_with(r#"[{"bn":"","#));
        assert!(to_senml("dev/", &r).starts_with(r#"[{"bn":"dev/","#));
    }

    #[test]
    fn line_protocol_shape_and_escaping() {
        let ts = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
        let r = [Reading::from_parts(H, ts, 54.0).unwrap()];
        assert_eq!(
            to_line_protocol("air", &r),
            "air value=54 1795514400000000000\n"
        );
        assert_eq!(
            to_line_protocol("a b,c\\", &r),
            "a\\ b\\,c\\\\ value=54 1795514400000000000\n"
        );
        assert!(to_line_protocol("", &r).starts_with("humidity value=54 "));
        let l = to_line_protocol("a\nb", &r);
        assert_eq!(l.lines().count(), 1, "{l:?}");
        let parsed = line_protocol::parse(l.as_bytes(), H, Precision::Ns, received()).unwrap();
        assert_eq!(parsed[0].value, 54.0);
    }
}
