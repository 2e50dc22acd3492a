//! InfluxDB line protocol:
//! `measurement[,tag=value…] field=value[,field=value…] [timestamp]`.
//!
//! The measurement name and tags are checked for syntax but otherwise ignored: the
//! sensor is identified by the URL, not by the body. The reading's value is the one field
//! whose key is one of the kind's quantity names ("humidity"/"value" for humidity);
//! other fields are parsed and ignored, so a Telegraf line carrying both temperature and
//! humidity works. Two matching fields on one line is ambiguous and rejected.
//!
//! Escaping (as InfluxDB): in the measurement `\,` and `\ `; in tag keys, tag values and
//! field keys `\,` `\=` `\ `; in string field values `\"` and `\\`. A backslash before any
//! other character is literal.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::error::snippet;
use super::{IngestError, Origin, RawReading};
use crate::domain::SensorKind;

/// Unit of the integer timestamp at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Ns,
    Us,
    Ms,
    S,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Ns => "ns",
            Precision::Us => "us",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }

    /// Query-parameter form: absent means the protocol default, nanoseconds.
    pub fn from_param(p: Option<&str>) -> Result<Precision, IngestError> {
        p.map_or(Ok(Precision::Ns), str::parse)
    }

    fn to_ts(self, n: i64) -> Option<DateTime<Utc>> {
        match self {
            Precision::Ns => Some(DateTime::from_timestamp_nanos(n)),
            Precision::Us => DateTime::from_timestamp_micros(n),
            Precision::Ms => DateTime::from_timestamp_millis(n),
            Precision::S => DateTime::from_timestamp(n, 0),
        }
    }
}

impl FromStr for Precision {
    type Err = IngestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ns" => Ok(Precision::Ns),
            "us" => Ok(Precision::Us),
            "ms" => Ok(Precision::Ms),
            "s" => Ok(Precision::S),
            other => Err(IngestError::Malformed(format!(
                "unknown precision '{}' (expected ns, us, ms or s)",
                snippet(other)
            ))),
        }
    }
}

pub fn parse(
    body: &[u8],
    kind: SensorKind,
    precision: Precision,
    received: DateTime<Utc>,
) -> Result<Vec<RawReading>, IngestError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let valid = body.get(..e.valid_up_to()).unwrap_or(body);
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        IngestError::Malformed(format!("line {line}: not valid UTF-8"))
    })?;
    let mut out = Vec::new();
    for (idx, line) in text.split('\n').enumerate() {
        let lineno = idx + 1;
        let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
        if line.trim_end().is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = parse_line(line.as_bytes(), kind).map_err(|e| e.at(lineno))?;
        let ts = match parsed.ts {
            None => received,
            Some(n) => precision.to_ts(n).ok_or_else(|| {
                IngestError::Malformed(format!(
                    "line {lineno}: timestamp {n} out of range for precision {}",
                    precision.as_str()
                ))
            })?,
        };
        out.push(RawReading {
            ts,
            value: parsed.value,
            origin: Origin::Line(lineno),
        });
    }
    Ok(out)
}

/// A line error before the line number is known.
struct LineError {
    wrong_quantity: bool,
    msg: String,
}

impl LineError {
    fn new(msg: impl Into<String>) -> LineError {
        LineError {
            wrong_quantity: false,
            msg: msg.into(),
        }
    }

    fn at(self, lineno: usize) -> IngestError {
        let msg = format!("line {lineno}: {}", self.msg);
        if self.wrong_quantity {
            IngestError::WrongQuantity(msg)
        } else {
            IngestError::Malformed(msg)
        }
    }
}

struct ParsedLine {
    value: f64,
    ts: Option<i64>,
}

#[derive(Debug, PartialEq)]
enum FieldValue {
    Float(f64),
    Int(i64),
    UInt(u64),
    Str,
    Bool,
}

fn parse_line(line: &[u8], kind: SensorKind) -> Result<ParsedLine, LineError> {
    let mut c = Cursor { s: line, pos: 0 };

    let measurement = c.read_escaped(b", ", b", \\");
    if measurement.is_empty() {
        return Err(LineError::new("missing measurement name"));
    }
    while c.eat(b',') {
        let key = c.read_escaped(b",= ", b",= \\");
        if key.is_empty() {
            return Err(LineError::new("empty tag key"));
        }
        if !c.eat(b'=') {
            return Err(LineError::new(format!(
                "tag '{}': missing '='",
                snippet(&key)
            )));
        }
        if c.read_escaped(b", ", b",= \\").is_empty() {
            return Err(LineError::new(format!(
                "tag '{}': empty value",
                snippet(&key)
            )));
        }
    }
    if c.skip_spaces() == 0 || c.at_end() {
        return Err(LineError::new(
            "missing fields (expected 'measurement[,tags] field=value [timestamp]')",
        ));
    }

    let mut chosen: Option<(String, FieldValue)> = None;
    loop {
        let key = c.read_escaped(b",= ", b",= \\");
        if key.is_empty() {
            return Err(LineError::new("empty field key"));
        }
        if !c.eat(b'=') {
            return Err(LineError::new(format!(
                "field {}: missing '='",
                snippet(&key)
            )));
        }
        let value = read_field_value(&mut c)
            .map_err(|m| LineError::new(format!("field {}: {m}", snippet(&key))))?;
        if kind.quantity_names().contains(&key.as_str()) {
            if let Some((first, _)) = &chosen {
                return Err(LineError::new(format!(
                    "fields '{first}' and '{key}' both give the {kind} value; send one"
                )));
            }
            chosen = Some((key, value));
        }
        if !c.eat(b',') {
            break;
        }
    }

    let ts = if c.skip_spaces() > 0 && !c.at_end() {
        let tok = c.read_until(b" ");
        let tok = std::str::from_utf8(tok).unwrap_or("");
        let n = tok
            .parse::<i64>()
            .map_err(|_| LineError::new(format!("invalid timestamp '{}'", snippet(tok))))?;
        c.skip_spaces();
        Some(n)
    } else {
        None
    };
    if !c.at_end() {
        let rest = String::from_utf8_lossy(line.get(c.pos..).unwrap_or_default());
        return Err(LineError::new(format!("unexpected '{}'", snippet(&rest))));
    }

    let Some((key, value)) = chosen else {
        let names = kind.quantity_names().join("' or '");
        return Err(LineError {
            wrong_quantity: true,
            msg: format!("no field named '{names}'"),
        });
    };
    let value = match value {
        FieldValue::Float(v) => v,
        // Sensors commonly send whole percentages as integers; f64 holds them exactly
        // up to 2^53, far beyond any valid reading.
        FieldValue::Int(v) => v as f64,
        FieldValue::UInt(v) => v as f64,
        FieldValue::Str => {
            return Err(LineError::new(format!(
                "field {key}: expected a number, got a string"
            )))
        }
        FieldValue::Bool => {
            return Err(LineError::new(format!(
                "field {key}: expected a number, got a boolean"
            )))
        }
    };
    Ok(ParsedLine { value, ts })
}

fn read_field_value(c: &mut Cursor<'_>) -> Result<FieldValue, String> {
    if c.eat(b'"') {
        // String value: ends at the first unescaped quote; may contain , = and spaces.
        loop {
            match c.next() {
                None => return Err("unterminated string".into()),
                Some(b'\\') => {
                    if matches!(c.peek(), Some(b'"' | b'\\')) {
                        c.pos += 1;
                    }
                }
                Some(b'"') => return Ok(FieldValue::Str),
                Some(_) => {}
            }
        }
    }
    let tok = c.read_until(b", ");
    // Tokens outside quotes are ASCII by construction when valid; anything else fails below.
    let tok = std::str::from_utf8(tok).unwrap_or("\u{fffd}");
    match tok {
        "" => Err("missing value".into()),
        "t" | "T" | "true" | "True" | "TRUE" | "f" | "F" | "false" | "False" | "FALSE" => {
            Ok(FieldValue::Bool)
        }
        _ => {
            if let Some(digits) = tok.strip_suffix('i') {
                digits
                    .parse::<i64>()
                    .map(FieldValue::Int)
                    .map_err(|_| format!("invalid integer '{}'", snippet(tok)))
            } else if let Some(digits) = tok.strip_suffix('u') {
                digits
                    .parse::<u64>()
                    .map(FieldValue::UInt)
                    .map_err(|_| format!("invalid unsigned integer '{}'", snippet(tok)))
            } else if is_float_syntax(tok) {
                tok.parse::<f64>()
                    .map(FieldValue::Float)
                    .map_err(|_| format!("invalid number '{}'", snippet(tok)))
            } else {
                Err(format!("invalid number '{}'", snippet(tok)))
            }
        }
    }
}

/// Rust's f64 parser also accepts "inf", "NaN" and "infinity"; line protocol does not.
fn is_float_syntax(tok: &str) -> bool {
    tok.bytes().any(|b| b.is_ascii_digit())
        && tok
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Raw bytes up to (not including) the first byte in `stop`.
    fn read_until(&mut self, stop: &[u8]) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(|b| !stop.contains(&b)) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// Unescaped text up to the first unescaped byte in `stop`; `\x` for x in `escapable`
    /// yields x, any other backslash is kept. Splitting only at ASCII bytes keeps UTF-8
    /// sequences whole, so the lossy conversion never actually replaces anything.
    fn read_escaped(&mut self, stop: &[u8], escapable: &[u8]) -> String {
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            if stop.contains(&b) {
                break;
            }
            self.pos += 1;
            if b == b'\\' {
                if let Some(n) = self.peek().filter(|n| escapable.contains(n)) {
                    out.push(n);
                    self.pos += 1;
                    continue;
                }
            }
            out.push(b);
        }
        String::from_utf8_lossy(&out).into_owned()
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
        parse(body.as_bytes(), H, Precision::Ns, received()).unwrap()
    }

    fn one(line: &str) -> RawReading {
        let r = ok(line);
        assert_eq!(r.len(), 1, "{line}");
        r[0]
    }

    fn err(body: &str) -> IngestError {
        parse(body.as_bytes(), H, Precision::Ns, received()).unwrap_err()
    }

    fn err_msg(body: &str) -> String {
        let e = err(body);
        assert_eq!(e.reason(), "malformed", "{e}");
        e.to_string()
    }

    #[test]
    fn basic_line_with_ns_timestamp() {
        let r = one("air,room=kitchen humidity=54.2 1764000000000000000");
        assert_eq!(r.value, 54.2);
        assert_eq!(r.ts.timestamp(), 1_764_000_000);
        assert_eq!(r.origin, Origin::Line(1));
    }

    #[test]
    fn missing_timestamp_is_receipt_time() {
        assert_eq!(one("air value=1").ts, received());
        assert_eq!(one("air value=1   ").ts, received(), "trailing spaces");
    }

    #[test]
    fn precisions() {
        let cases = [
            (
                Precision::Ns,
                "1764000000123456789",
                1_764_000_000_123_456_789i64,
            ),
            (Precision::Us, "1764000000123456", 1_764_000_000_123_456_000),
            (Precision::Ms, "1764000000123", 1_764_000_000_123_000_000),
            (Precision::S, "1764000000", 1_764_000_000_000_000_000),
        ];
        for (p, ts, want_ns) in cases {
            let body = format!("m value=1 {ts}");
            let r = parse(body.as_bytes(), H, p, received()).unwrap();
            assert_eq!(r[0].ts.timestamp_nanos_opt(), Some(want_ns), "{p:?}");
        }
        let r = parse(b"m value=1 -5", H, Precision::S, received()).unwrap();
        assert_eq!(r[0].ts.timestamp(), -5, "negative is left to validation");
        let e = parse(
            b"m value=1 9223372036854775807",
            H,
            Precision::S,
            received(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("line 1: timestamp 9223372036854775807 out of range for precision s"),
            "{e}"
        );
    }

    #[test]
    fn precision_parsing() {
        assert_eq!(Precision::from_param(None).unwrap(), Precision::Ns);
        for p in ["ns", "us", "ms", "s"] {
            assert_eq!(Precision::from_param(Some(p)).unwrap().as_str(), p);
        }
        let e = Precision::from_param(Some("h")).unwrap_err();
        assert_eq!(e.reason(), "malformed");
        assert!(e.to_string().contains("unknown precision 'h'"));
    }

    #[test]
    fn field_value_types() {
        assert_eq!(one("m value=54i").value, 54.0);
        assert_eq!(one("m value=-3i").value, -3.0);
        assert_eq!(one("m value=54u").value, 54.0);
        assert_eq!(one("m value=5.4e1").value, 54.0);
        assert_eq!(one("m value=-0.5").value, -0.5);
        assert_eq!(one("m value=.5").value, 0.5);
        // Other fields of any type are parsed and ignored.
        let r = one(r#"m temperature=21.5,humidity=60i,ok=true,bad=F,note="a b,c=d" 1"#);
        assert_eq!(r.value, 60.0);
    }

    #[test]
    fn escaping() {
        assert_eq!(one(r"my\ meas\,x,tag\ k\=1=v\,a\ l value=1").value, 1.0);
        assert_eq!(one(r#"m,t=a\"b note="q\"uo\\te, x=y",value=7"#).value, 7.0);
        assert_eq!(one(r"m field\ key\,x\=y=1,value=2").value, 2.0);
    }

    #[test]
    fn escaped_key_is_unescaped_before_matching() {
        // "hum\idity" keeps its backslash (\\i is not an escape) and so does not match.
        let e = err(r"m hum\idity=3");
        assert_eq!(e.reason(), "wrong_quantity");
    }

    #[test]
    fn comments_blank_lines_crlf_and_line_numbers() {
        let body = "# header\n\n   \nm value=1 1\r\n  # indented comment\nm humidity=2 2\n";
        let r = ok(body);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].origin, Origin::Line(4));
        assert_eq!(r[1].origin, Origin::Line(6));
        assert_eq!(r[1].value, 2.0);
        assert!(ok("").is_empty());
        assert!(ok("# only a comment").is_empty());
    }

    #[test]
    fn invalid_numbers_name_line_and_field() {
        let m = err_msg("m value=1\nm value=2\nm value=abc\n");
        assert_eq!(m, "line 3: field value: invalid number 'abc'");
        for (line, want) in [
            ("m value=NaN", "invalid number 'NaN'"),
            ("m value=inf", "invalid number 'inf'"),
            ("m value=1.2.3", "invalid number '1.2.3'"),
            ("m value=12x", "invalid number '12x'"),
            ("m value=1.5i", "invalid integer '1.5i'"),
            ("m value=-1u", "invalid unsigned integer '-1u'"),
            ("m value=", "field value: missing value"),
            ("m value=1,other=", "field other: missing value"),
        ] {
            let m = err_msg(line);
            assert!(m.starts_with("line 1: "), "{m}");
            assert!(m.contains(want), "{line}: {m}");
        }
    }

    #[test]
    fn overflowing_float_is_left_to_validation_as_non_finite() {
        assert!(one("m value=1e999").value.is_infinite());
    }

    #[test]
    fn structural_errors() {
        for (line, want) in [
            ("m", "missing fields"),
            ("m ", "missing fields"),
            (",t=1 value=1", "missing measurement name"),
            (" ,t=1 value=1", "missing measurement name"),
            ("m,=1 value=1", "empty tag key"),
            ("m,t value=1", "tag 't': missing '='"),
            ("m,t= value=1", "tag 't': empty value"),
            ("m =1", "empty field key"),
            ("m value", "field value: missing '='"),
            ("m value=1 abc", "invalid timestamp 'abc'"),
            ("m value=1 1.5", "invalid timestamp '1.5'"),
            ("m value=1 1 extra", "unexpected 'extra'"),
            (r#"m note="abc"#, "unterminated string"),
            (r#"m note="a"x,value=1"#, "unexpected 'x,value=1'"),
        ] {
            let m = err_msg(line);
            assert!(m.starts_with("line 1: "), "{m}");
            assert!(m.contains(want), "{line}: {m}");
        }
    }

    #[test]
    fn value_field_must_be_numeric() {
        let m = err_msg(r#"m value="54""#);
        assert_eq!(m, "line 1: field value: expected a number, got a string");
        let m = err_msg("m humidity=true");
        assert_eq!(
            m,
            "line 1: field humidity: expected a number, got a boolean"
        );
    }

    #[test]
    fn quantity_selection() {
        let e = err("m temperature=20");
        assert_eq!(e.reason(), "wrong_quantity");
        assert_eq!(
            e.to_string(),
            "line 1: no field named 'humidity' or 'value'"
        );
        let m = err_msg("m humidity=1,value=2");
        assert!(m.contains("fields 'humidity' and 'value' both give"), "{m}");
        let m = err_msg("m value=1,value=2");
        assert!(m.contains("both give"), "{m}");
        let r = parse(
            b"m temperature=21.5,humidity=60",
            SensorKind::Temperature,
            Precision::Ns,
            received(),
        )
        .unwrap();
        assert_eq!(r[0].value, 21.5);
    }

    #[test]
    fn non_utf8_names_the_line() {
        let e = parse(b"m value=1\nm\xff value=2", H, Precision::Ns, received()).unwrap_err();
        assert_eq!(e.to_string(), "line 2: not valid UTF-8");
    }

    #[test]
    fn unicode_measurement_and_tags() {
        assert_eq!(one("Luftfeuchte,raum=küche value=3").value, 3.0);
    }
}
