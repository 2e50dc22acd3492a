//! Native JSON: one object `{"ts": …, "value": …}` or an array of them.
//!
//! `ts` is an RFC 3339 string or unix seconds (integer or fractional); when absent the
//! receipt time is used. Unknown and duplicate fields are errors: a typo such as
//! `"valeu"` must not silently become "no value".
//!
//! The body is streamed through a serde visitor instead of a `serde_json::Value` tree, so
//! duplicate keys are seen (a `Value` map would keep only the last one) and each error
//! can name the reading index.
//!
//! Precision note: without serde_json's `float_roundtrip` feature (not enabled in this
//! crate) numbers with more than 15 significant digits may parse 1 ulp off. Sensor
//! values never have that many digits; timestamps are rounded to microseconds anyway.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;

use super::error::snippet;
use super::timeconv::unix_secs;
use super::{IngestError, Origin, RawReading};

pub fn parse(body: &[u8], received: DateTime<Utc>) -> Result<Vec<RawReading>, IngestError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let readings = BatchSeed { received }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r))
        .map_err(json_error)?;
    Ok(readings)
}

fn json_error(e: serde_json::Error) -> IngestError {
    match e.classify() {
        // Our own messages (and serde's type errors) already say what is wrong.
        Category::Data => IngestError::Malformed(e.to_string()),
        Category::Syntax | Category::Eof | Category::Io => {
            IngestError::Malformed(format!("malformed JSON: {e}"))
        }
    }
}

struct BatchSeed {
    received: DateTime<Utc>,
}

impl<'de> DeserializeSeed<'de> for BatchSeed {
    type Value = Vec<RawReading>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed {
    type Value = Vec<RawReading>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a reading object or an array of reading objects")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let one = ReadingSeed {
            index: 0,
            received: self.received,
        }
        .visit_map(map)?;
        Ok(vec![one])
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Do not trust size_hint for allocation: it comes from the client.
        let mut out = Vec::new();
        let mut index = 0;
        while let Some(r) = seq.next_element_seed(ReadingSeed {
            index,
            received: self.received,
        })? {
            out.push(r);
            index += 1;
        }
        Ok(out)
    }
}

struct ReadingSeed {
    index: usize,
    received: DateTime<Utc>,
}

impl<'de> DeserializeSeed<'de> for ReadingSeed {
    type Value = RawReading;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl ReadingSeed {
    fn not_object<E: de::Error>(&self) -> E {
        E::custom(format!(
            "reading {}: expected an object like {{\"ts\": \"2026-11-24T10:00:00Z\", \"value\": 54.2}}",
            self.index
        ))
    }
}

impl<'de> Visitor<'de> for ReadingSeed {
    type Value = RawReading;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reading {} to be an object", self.index)
    }

    // Non-object elements: say which reading, instead of serde's generic "invalid type".
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.not_object())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.not_object())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.not_object())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.not_object())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.not_object())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(self.not_object())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.not_object())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let i = self.index;
        let err = |msg: String| de::Error::custom(format!("reading {i}: {msg}"));
        let mut ts: Option<DateTime<Utc>> = None;
        let mut value: Option<f64> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "ts" => {
                    if ts.is_some() {
                        return Err(err("duplicate field 'ts'".into()));
                    }
                    let raw: serde_json::Value = map.next_value()?;
                    ts = Some(parse_ts(&raw).map_err(|m| err(format!("ts: {m}")))?);
                }
                "value" => {
                    if value.is_some() {
                        return Err(err("duplicate field 'value'".into()));
                    }
                    let raw: serde_json::Value = map.next_value()?;
                    match raw.as_f64() {
                        Some(v) => value = Some(v),
                        None => return Err(err("value: expected a number".into())),
                    }
                }
                other => {
                    return Err(err(format!(
                        "unknown field '{}' (allowed: 'ts', 'value')",
                        snippet(other)
                    )))
                }
            }
        }
        let value = value.ok_or_else(|| err("value: missing".into()))?;
        Ok(RawReading {
            ts: ts.unwrap_or(self.received),
            value,
            origin: Origin::Reading(i),
        })
    }
}

fn parse_ts(raw: &serde_json::Value) -> Result<DateTime<Utc>, String> {
    match raw {
        serde_json::Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("'{}' is not an RFC 3339 timestamp: {e}", snippet(s))),
        serde_json::Value::Number(n) => {
            // Integers take the exact path; only fractional seconds go through f64.
            let t = match n.as_i64() {
                Some(secs) => DateTime::from_timestamp(secs, 0),
                None => n.as_f64().and_then(unix_secs),
            };
            t.ok_or_else(|| format!("unix seconds {n} out of range"))
        }
        _ => Err("expected an RFC 3339 string or unix seconds".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn received() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
    }

    fn ok(body: &str) -> Vec<RawReading> {
        parse(body.as_bytes(), received()).unwrap()
    }

    fn err(body: &str) -> String {
        let e = parse(body.as_bytes(), received()).unwrap_err();
        assert_eq!(e.reason(), "malformed");
        e.to_string()
    }

    #[test]
    fn single_object() {
        let r = ok(r#"{"ts": "2026-11-24T10:00:00Z", "value": 54.2}"#);
        assert_eq!(
            r,
            vec![RawReading {
                ts: Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap(),
                value: 54.2,
                origin: Origin::Reading(0),
            }]
        );
    }

    #[test]
    fn array_with_mixed_timestamp_forms() {
        let r = ok(r#"[
            {"ts": "2026-11-24T11:00:00+01:00", "value": 50},
            {"ts": 1764000000, "value": 51.5},
            {"ts": 1764000000.25, "value": 52},
            {"value": 53}
        ]"#);
        assert_eq!(r.len(), 4);
        assert_eq!(
            r[0].ts,
            Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
        );
        assert_eq!(r[0].value, 50.0);
        assert_eq!(r[1].ts.timestamp(), 1_764_000_000);
        assert_eq!(r[2].ts.timestamp_micros(), 1_764_000_000_250_000);
        assert_eq!(r[3].ts, received(), "missing ts → receipt time");
        assert_eq!(r[3].origin, Origin::Reading(3));
    }

    #[test]
    fn empty_array_is_empty_batch() {
        assert!(ok("[]").is_empty());
    }

    #[test]
    fn fractional_ts_keeps_nanos_from_rfc3339() {
        let r = ok(r#"{"ts": "2026-11-24T10:00:00.123456789Z", "value": 1}"#);
        assert_eq!(r[0].ts.timestamp_subsec_nanos(), 123_456_789);
    }

    #[test]
    fn negative_unix_seconds_parse_and_are_left_to_validation() {
        let r = ok(r#"{"ts": -5, "value": 1}"#);
        assert_eq!(r[0].ts.timestamp(), -5);
    }

    #[test]
    fn value_errors_name_the_index() {
        let m = err(r#"[{"value": 1}, {"value": 2}, {"value": 3}, {"value": "abc"}]"#);
        assert!(m.starts_with("reading 3: value: expected a number"), "{m}");
        let m = err(r#"[{"value": 1}, {"value": null}]"#);
        assert!(m.starts_with("reading 1: value: expected a number"), "{m}");
        let m = err(r#"[{"value": 1}, {"ts": 5}]"#);
        assert!(m.starts_with("reading 1: value: missing"), "{m}");
    }

    #[test]
    fn unknown_and_duplicate_fields() {
        let m = err(r#"{"valeu": 1}"#);
        assert!(m.starts_with("reading 0: unknown field 'valeu'"), "{m}");
        let m = err(r#"{"value": 1, "value": 2}"#);
        assert!(m.starts_with("reading 0: duplicate field 'value'"), "{m}");
        let m = err(r#"{"ts": 1, "ts": 2, "value": 2}"#);
        assert!(m.starts_with("reading 0: duplicate field 'ts'"), "{m}");
    }

    #[test]
    fn ts_errors() {
        let m = err(r#"[{"value": 1}, {"ts": "yesterday", "value": 1}]"#);
        assert!(
            m.starts_with("reading 1: ts: 'yesterday' is not an RFC 3339"),
            "{m}"
        );
        let m = err(r#"{"ts": true, "value": 1}"#);
        assert!(m.contains("reading 0: ts: expected an RFC 3339 string or unix seconds"));
        let m = err(r#"{"ts": null, "value": 1}"#);
        assert!(m.contains("expected an RFC 3339 string"), "{m}");
        let m = err(r#"{"ts": 1e300, "value": 1}"#);
        assert!(m.contains("reading 0: ts: unix seconds"), "{m}");
        assert!(m.contains("out of range"), "{m}");
        let m = err(r#"{"ts": 99999999999999999, "value": 1}"#);
        assert!(m.contains("out of range"), "{m}");
    }

    #[test]
    fn wrong_shapes() {
        for el in ["5", "-5", "1.5", "true", "null", "\"x\"", "[]"] {
            let m = err(&format!(r#"[{{"value": 1}}, {el}]"#));
            assert!(
                m.starts_with("reading 1: expected an object like"),
                "{el}: {m}"
            );
        }
        let m = err(r#""hello""#);
        assert!(m.contains("a reading object or an array"), "{m}");
    }

    #[test]
    fn syntax_errors() {
        assert!(err("").starts_with("malformed JSON"));
        assert!(err("{\"value\": 1").starts_with("malformed JSON"));
        assert!(err("{\"value\": 1} trailing").starts_with("malformed JSON"));
        assert!(err("[{\"value\": 1},]").starts_with("malformed JSON"));
        // serde_json refuses numbers that overflow f64 rather than producing inf.
        assert!(err("{\"value\": 1e999}").contains("line 1"));
        assert!(err("\u{feff}{}").starts_with("malformed JSON"));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowing_the_stack() {
        let body = format!(
            "{{\"value\": {}1{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(err(&body).contains("recursion limit"));
    }
}
