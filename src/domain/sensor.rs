use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::DomainError;

const NAME_MAX_LEN: usize = 64;

/// A sensor's name: 1–64 characters of `[a-z0-9._-]`.
///
/// The alphabet is deliberately narrow: names appear in URLs, metric labels and file
/// names, so they must never need escaping and must not differ only by case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SensorName(String);

impl SensorName {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.is_empty() {
            return Err(DomainError::InvalidSensorName(
                "must be 1–64 characters, got an empty name".into(),
            ));
        }
        // Count chars, not bytes, so the message is right for non-ASCII input too.
        let len = s.chars().count();
        if len > NAME_MAX_LEN {
            return Err(DomainError::InvalidSensorName(format!(
                "must be 1–64 characters, got {len}"
            )));
        }
        if let Some(bad) = s.chars().find(|c| !is_name_char(*c)) {
            return Err(DomainError::InvalidSensorName(format!(
                "may only contain a-z, 0-9, '.', '_' and '-', found {bad:?}"
            )));
        }
        Ok(SensorName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
}

impl fmt::Display for SensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SensorName {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SensorName::parse(s)
    }
}

impl TryFrom<String> for SensorName {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SensorName::parse(&s)
    }
}

impl From<SensorName> for String {
    fn from(n: SensorName) -> String {
        n.0
    }
}

impl AsRef<str> for SensorName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What a sensor measures. The kind fixes the unit and the physically valid range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SensorKind {
    Humidity,
    Temperature,
}

impl SensorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SensorKind::Humidity => "humidity",
            SensorKind::Temperature => "temperature",
        }
    }

    /// Inclusive physical range. −90..=60 °C spans the coldest and hottest air
    /// temperatures ever recorded, so anything outside is a broken sensor.
    pub fn valid_range(self) -> (f64, f64) {
        match self {
            SensorKind::Humidity => (0.0, 100.0),
            SensorKind::Temperature => (-90.0, 60.0),
        }
    }

    /// Unit shown to people.
    pub fn default_unit(self) -> &'static str {
        match self {
            SensorKind::Humidity => "%RH",
            SensorKind::Temperature => "°C",
        }
    }

    /// Unit symbol from the SenML units registry (RFC 8428 §12.1). For humidity it is
    /// the same as the display unit; for temperature SenML spells Celsius "Cel".
    pub fn senml_unit(self) -> &'static str {
        match self {
            SensorKind::Humidity => "%RH",
            SensorKind::Temperature => "Cel",
        }
    }

    /// Names accepted for this quantity in SenML `n` and line-protocol field keys.
    /// The first one is the canonical name that encoders write.
    pub fn quantity_names(self) -> &'static [&'static str] {
        match self {
            SensorKind::Humidity => &["humidity", "value"],
            SensorKind::Temperature => &["temperature", "value"],
        }
    }
}

impl fmt::Display for SensorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SensorKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "humidity" => Ok(SensorKind::Humidity),
            "temperature" => Ok(SensorKind::Temperature),
            other => Err(DomainError::UnknownSensorKind(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_accepts_full_alphabet() {
        let n = SensorName::parse("greenhouse-2.north_wall09").unwrap();
        assert_eq!(n.as_str(), "greenhouse-2.north_wall09");
        assert_eq!(n.to_string(), "greenhouse-2.north_wall09");
    }

    #[test]
    fn name_length_limits() {
        assert!(SensorName::parse("a").is_ok());
        assert!(SensorName::parse(&"a".repeat(64)).is_ok());
        let err = SensorName::parse(&"a".repeat(65)).unwrap_err();
        assert!(err.to_string().contains("1–64 characters, got 65"), "{err}");
        let err = SensorName::parse("").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        assert_eq!(err.reason(), "invalid_name");
    }

    #[test]
    fn name_rejects_bad_chars() {
        for bad in ["Greenhouse", "a b", "a/b", "ä", "a:b", "A"] {
            let err = SensorName::parse(bad).unwrap_err();
            assert!(err.to_string().contains("may only contain"), "{bad}: {err}");
        }
        // 64 multi-byte chars: too long is reported in chars, not bytes.
        let err = SensorName::parse(&"é".repeat(65)).unwrap_err();
        assert!(err.to_string().contains("got 65"), "{err}");
    }

    #[test]
    fn name_serde_is_a_checked_string() {
        let n: SensorName = serde_json::from_str("\"kitchen\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"kitchen\"");
        assert!(serde_json::from_str::<SensorName>("\"Kitchen\"").is_err());
        assert!("x y".parse::<SensorName>().is_err());
    }

    #[test]
    fn kind_basics() {
        assert_eq!(
            "humidity".parse::<SensorKind>().unwrap(),
            SensorKind::Humidity
        );
        assert_eq!(
            "temperature".parse::<SensorKind>().unwrap(),
            SensorKind::Temperature
        );
        let err = "Humidity".parse::<SensorKind>().unwrap_err();
        assert_eq!(err.reason(), "unknown_kind");
        assert_eq!(SensorKind::Humidity.valid_range(), (0.0, 100.0));
        assert_eq!(SensorKind::Temperature.valid_range(), (-90.0, 60.0));
        assert_eq!(SensorKind::Humidity.default_unit(), "%RH");
        assert_eq!(SensorKind::Temperature.default_unit(), "°C");
        assert_eq!(
            SensorKind::Humidity.quantity_names(),
            &["humidity", "value"]
        );
        assert_eq!(
            SensorKind::Temperature.quantity_names(),
            &["temperature", "value"]
        );
        assert_eq!(
            serde_json::to_string(&SensorKind::Temperature).unwrap(),
            "\"temperature\""
        );
        assert_eq!(SensorKind::Humidity.to_string(), "humidity");
    }
}
