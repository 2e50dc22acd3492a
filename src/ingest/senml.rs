//! SenML (RFC 8428) JSON packs: `[{"bn": …, "bt": …, "n": …, "v": …, "t": …}, …]`.
//!
//! Rules implemented (RFC section in brackets):
//! - Base fields `bn`, `bt`, `bu`, `bv` apply to their own record and every later one
//!   until replaced [§4.1]. `bs`, `s`, `ut` are read but not used.
//! - Resolved name = `bn` + `n`; it must be one of the sensor kind's quantity names, or
//!   end with one right after a separator (`:` `/` `.` `_` `-`), e.g.
//!   `urn:dev:mac:0024befffe804ff1:humidity`. A bare suffix match ("xhumidity") is not
//!   enough: it would accept unrelated quantities.
//! - Resolved value = `bv` + `v`. A record needs a numeric `v`; `vs`/`vb`/`vd` and
//!   sum-only records are rejected (a base value alone does not make a reading).
//! - Resolved unit = `u` or else `bu`; when present it must be the kind's unit.
//! - Resolved time = `bt` + `t` (both default 0). Below 2^28 it is relative to the
//!   receipt time, negative meaning in the past [§4.5.3]; otherwise unix seconds.
//! - `bver` above 10 is rejected; unknown fields are ignored, except those ending in
//!   `_`, which are "must understand" and so rejected [§4.4].

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value as Json};

use super::error::snippet;
use super::timeconv::secs_to_micros;
use super::{IngestError, Origin, RawReading};
use crate::domain::SensorKind;

/// Times below this many seconds are relative to "now" (RFC 8428 §4.5.3).
const RELATIVE_LIMIT_US: i64 = (1 << 28) * 1_000_000;
/// The SenML version this parser understands.
const SUPPORTED_VERSION: f64 = 10.0;
const NAME_SEPARATORS: [char; 5] = [':', '/', '.', '_', '-'];

/// Base fields carried from record to record.
#[derive(Default)]
struct Base {
    name: String,
    time_us: i64,
    unit: Option<String>,
    value: f64,
}

pub fn parse(
    body: &[u8],
    kind: SensorKind,
    received: DateTime<Utc>,
) -> Result<Vec<RawReading>, IngestError> {
    let pack: Json = serde_json::from_slice(body)
        .map_err(|e| IngestError::Malformed(format!("malformed SenML JSON: {e}")))?;
    let Json::Array(records) = pack else {
        return Err(IngestError::Malformed(
            "a SenML pack must be a JSON array of records".into(),
        ));
    };
    let mut base = Base::default();
    let mut out = Vec::with_capacity(records.len());
    for (i, rec) in records.iter().enumerate() {
        let Json::Object(rec) = rec else {
            return Err(IngestError::Malformed(format!(
                "record {i}: expected an object"
            )));
        };
        out.push(resolve(i, rec, kind, &mut base, received)?);
    }
    Ok(out)
}

fn resolve(
    i: usize,
    rec: &Map<String, Json>,
    kind: SensorKind,
    base: &mut Base,
    received: DateTime<Utc>,
) -> Result<RawReading, IngestError> {
    let malformed = |msg: String| IngestError::Malformed(format!("record {i}: {msg}"));

    if let Some(k) = rec.keys().find(|k| k.ends_with('_')) {
        return Err(malformed(format!(
            "field '{}' must be understood but is not supported",
            snippet(k)
        )));
    }
    if let Some(ver) = opt_num(rec, "bver").map_err(&malformed)? {
        if ver > SUPPORTED_VERSION {
            return Err(malformed(format!(
                "SenML version {ver} is not supported (max 10)"
            )));
        }
    }

    // Base fields first: they apply to this record too.
    if let Some(bn) = opt_str(rec, "bn").map_err(&malformed)? {
        base.name = bn.to_owned();
    }
    if let Some(bt) = opt_num(rec, "bt").map_err(&malformed)? {
        base.time_us =
            secs_to_micros(bt).ok_or_else(|| malformed(format!("bt {bt} out of range")))?;
    }
    if let Some(bu) = opt_str(rec, "bu").map_err(&malformed)? {
        base.unit = Some(bu.to_owned());
    }
    if let Some(bv) = opt_num(rec, "bv").map_err(&malformed)? {
        base.value = bv;
    }

    // Name.
    let n = opt_str(rec, "n").map_err(&malformed)?.unwrap_or("");
    let name = format!("{}{n}", base.name);
    if !names_quantity(&name, kind) {
        let expected = kind.quantity_names().join("' or '");
        return Err(IngestError::WrongQuantity(format!(
            "record {i}: name '{}' is not a {kind} quantity (expected it to be or end with '{expected}')",
            snippet(&name)
        )));
    }

    // Value.
    let v = match opt_num(rec, "v").map_err(&malformed)? {
        Some(v) => v,
        None => {
            let other = ["vs", "vb", "vd", "s"]
                .into_iter()
                .find(|k| rec.contains_key(*k));
            return Err(match other {
                Some(k) => malformed(format!(
                    "'{k}' is not accepted: a numeric value 'v' is required"
                )),
                None => malformed("missing numeric value 'v'".into()),
            });
        }
    };

    // Unit.
    let unit = match opt_str(rec, "u").map_err(&malformed)? {
        Some(u) => Some(u),
        None => base.unit.as_deref(),
    };
    if let Some(u) = unit {
        if u != kind.senml_unit() && u != kind.default_unit() {
            return Err(IngestError::WrongUnit(format!(
                "record {i}: unit '{}' does not match {kind} (expected '{}')",
                snippet(u),
                kind.senml_unit()
            )));
        }
    }

    // Time, in integer microseconds so absolute times survive exactly.
    let t = opt_num(rec, "t").map_err(&malformed)?.unwrap_or(0.0);
    let t_us = secs_to_micros(t).ok_or_else(|| malformed(format!("t {t} out of range")))?;
    let time_us = base
        .time_us
        .checked_add(t_us)
        .ok_or_else(|| malformed("bt + t out of range".into()))?;
    let ts = if time_us < RELATIVE_LIMIT_US {
        received.checked_add_signed(Duration::microseconds(time_us))
    } else {
        DateTime::from_timestamp_micros(time_us)
    }
    .ok_or_else(|| malformed("time out of range".into()))?;

    Ok(RawReading {
        ts,
        value: base.value + v,
        origin: Origin::Record(i),
    })
}

/// `name` is a quantity name, or ends with one preceded by a separator.
fn names_quantity(name: &str, kind: SensorKind) -> bool {
    kind.quantity_names().iter().any(|q| {
        name == *q
            || name
                .strip_suffix(q)
                .is_some_and(|prefix| prefix.ends_with(NAME_SEPARATORS))
    })
}

fn opt_num(rec: &Map<String, Json>, key: &str) -> Result<Option<f64>, String> {
    match rec.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("'{key}' must be a number")),
    }
}

fn opt_str<'a>(rec: &'a Map<String, Json>, key: &str) -> Result<Option<&'a str>, String> {
    match rec.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| format!("'{key}' must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const H: SensorKind = SensorKind::Humidity;

    fn received() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn ok(body: &str) -> Vec<RawReading> {
        parse(body.as_bytes(), H, received()).unwrap()
    }

    fn err(body: &str) -> IngestError {
        parse(body.as_bytes(), H, received()).unwrap_err()
    }

    #[test]
    fn rfc_style_pack_with_base_fields() {
        let r = ok(r#"[
            {"bn": "urn:dev:mac:0024befffe804ff1:", "bt": 1764000000, "bu": "%RH",
             "n": "humidity", "v": 54.2},
            {"n": "humidity", "t": 60, "v": 54.0},
            {"n": "humidity", "t": 120.5, "v": 53.5}
        ]"#);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].ts.timestamp(), 1_764_000_000);
        assert_eq!(r[0].value, 54.2);
        assert_eq!(r[1].ts.timestamp(), 1_764_000_060);
        assert_eq!(r[2].ts.timestamp_micros(), 1_764_000_120_500_000);
        assert_eq!(r[2].origin, Origin::Record(2));
    }

    #[test]
    fn plain_names_and_full_names() {
        assert_eq!(ok(r#"[{"n": "humidity", "v": 1}]"#).len(), 1);
        assert_eq!(ok(r#"[{"n": "value", "v": 1}]"#).len(), 1);
        assert_eq!(
            ok(r#"[{"bn": "humidity", "v": 1}]"#).len(),
            1,
            "bn alone is the name"
        );
        assert_eq!(
            ok(r#"[{"n": "urn:dev:mac:0024befffe804ff1:humidity", "v": 1}]"#).len(),
            1
        );
        assert_eq!(
            ok(r#"[{"bn": "greenhouse/", "n": "value", "v": 1}]"#).len(),
            1
        );
        let t = parse(
            br#"[{"n": "dev1.temperature", "u": "Cel", "v": 21}]"#,
            SensorKind::Temperature,
            received(),
        );
        assert_eq!(t.unwrap()[0].value, 21.0);
    }

    #[test]
    fn wrong_quantity_names_record_and_name() {
        let e = err(r#"[{"n": "humidity", "v": 1}, {"n": "urn:dev:x:temperature", "v": 20}]"#);
        assert_eq!(e.reason(), "wrong_quantity");
        assert!(
            e.to_string()
                .starts_with("record 1: name 'urn:dev:x:temperature'"),
            "{e}"
        );
        let e = err(r#"[{"n": "xhumidity", "v": 1}]"#);
        assert_eq!(e.reason(), "wrong_quantity");
        let e = err(r#"[{"v": 1}]"#);
        assert!(e.to_string().contains("name ''"), "{e}");
    }

    #[test]
    fn relative_time_rule() {
        // No time at all: "now".
        assert_eq!(ok(r#"[{"n": "humidity", "v": 1}]"#)[0].ts, received());
        // Negative: seconds in the past.
        let r = ok(r#"[{"n": "humidity", "v": 1, "t": -60}]"#);
        assert_eq!(r[0].ts, received() - Duration::seconds(60));
        // bt + t is what is compared with 2^28.
        let r = ok(r#"[{"bt": -120, "n": "humidity", "v": 1, "t": 30}]"#);
        assert_eq!(r[0].ts, received() - Duration::seconds(90));
        // Just below 2^28 is still relative; 2^28 itself is absolute.
        let r = ok(r#"[{"n": "humidity", "v": 1, "t": 268435455}]"#);
        assert_eq!(r[0].ts, received() + Duration::seconds(268_435_455));
        let r = ok(r#"[{"n": "humidity", "v": 1, "t": 268435456}]"#);
        assert_eq!(r[0].ts.timestamp(), 268_435_456);
        // Absolute bt with a relative-looking t adds up to absolute.
        let r = ok(r#"[{"bt": 1764000000, "n": "humidity", "v": 1, "t": -10}]"#);
        assert_eq!(r[0].ts.timestamp(), 1_763_999_990);
    }

    #[test]
    fn base_value_and_unit() {
        let r = ok(
            r#"[{"bv": 50, "bu": "%RH", "n": "humidity", "v": 4.5}, {"n": "humidity", "v": -1}]"#,
        );
        assert_eq!(r[0].value, 54.5);
        assert_eq!(r[1].value, 49.0, "bv carries over");
        let e = err(r#"[{"n": "humidity", "u": "Cel", "v": 1}]"#);
        assert_eq!(e.reason(), "wrong_unit");
        assert!(e.to_string().starts_with("record 0: unit 'Cel'"), "{e}");
        let e = err(r#"[{"bu": "%", "n": "humidity", "v": 1}]"#);
        assert_eq!(e.reason(), "wrong_unit");
        // Record unit overrides base unit.
        assert_eq!(
            ok(r#"[{"bu": "%", "n": "humidity", "u": "%RH", "v": 1}]"#).len(),
            1
        );
    }

    #[test]
    fn records_without_numeric_value() {
        for (body, what) in [
            (r#"[{"n": "humidity", "vs": "wet"}]"#, "'vs'"),
            (r#"[{"n": "humidity", "vb": true}]"#, "'vb'"),
            (r#"[{"n": "humidity", "vd": "AAE"}]"#, "'vd'"),
            (r#"[{"n": "humidity", "s": 5}]"#, "'s'"),
            (r#"[{"n": "humidity", "bv": 5}]"#, "missing numeric value"),
        ] {
            let e = err(body);
            assert_eq!(e.reason(), "malformed");
            assert!(e.to_string().starts_with("record 0: "), "{e}");
            assert!(e.to_string().contains(what), "{e}");
        }
    }

    #[test]
    fn type_errors() {
        for (body, what) in [
            (r#"[{"n": "humidity", "v": "1"}]"#, "'v' must be a number"),
            (r#"[{"n": 5, "v": 1}]"#, "'n' must be a string"),
            (r#"[{"bn": [], "v": 1}]"#, "'bn' must be a string"),
            (
                r#"[{"n": "humidity", "v": 1, "t": "now"}]"#,
                "'t' must be a number",
            ),
            (
                r#"[{"bt": null, "n": "humidity", "v": 1}]"#,
                "'bt' must be a number",
            ),
            (
                r#"[{"bu": 1, "n": "humidity", "v": 1}]"#,
                "'bu' must be a string",
            ),
            (
                r#"[{"bv": "x", "n": "humidity", "v": 1}]"#,
                "'bv' must be a number",
            ),
            (
                r#"[{"n": "humidity", "v": 1, "u": 3}]"#,
                "'u' must be a string",
            ),
        ] {
            let e = err(body);
            assert_eq!(e.reason(), "malformed", "{body}");
            assert!(e.to_string().contains(what), "{body}: {e}");
        }
    }

    #[test]
    fn version_and_must_understand_fields() {
        assert_eq!(
            ok(r#"[{"bver": 10, "n": "humidity", "v": 1, "ut": 5, "foo": 1}]"#).len(),
            1
        );
        let e = err(r#"[{"bver": 11, "n": "humidity", "v": 1}]"#);
        assert!(e.to_string().contains("version 11"), "{e}");
        let e = err(r#"[{"n": "humidity", "v": 1, "ext_": 1}]"#);
        assert!(e.to_string().contains("'ext_' must be understood"), "{e}");
    }

    #[test]
    fn structural_errors() {
        let e = err(r#"{"n": "humidity", "v": 1}"#);
        assert!(e.to_string().contains("must be a JSON array"), "{e}");
        let e = err(r#"[{"n": "humidity", "v": 1}, 3]"#);
        assert!(
            e.to_string().starts_with("record 1: expected an object"),
            "{e}"
        );
        let e = err("[{");
        assert!(e.to_string().starts_with("malformed SenML JSON"), "{e}");
        assert!(ok("[]").is_empty());
    }

    #[test]
    fn time_out_of_range() {
        let e = err(r#"[{"bt": 1e300, "n": "humidity", "v": 1}]"#);
        assert!(
            e.to_string().contains("bt 1e300 out of range")
                || e.to_string().contains("out of range"),
            "{e}"
        );
        let e = err(r#"[{"n": "humidity", "v": 1, "t": 9e12}]"#);
        assert!(e.to_string().contains("time out of range"), "{e}");
        let e = err(r#"[{"bt": 9e12, "n": "humidity", "v": 1, "t": 9e12}]"#);
        assert!(e.to_string().contains("out of range"), "{e}");
    }
}
