use super::{DomainError, SensorKind};

/// A measured value that is finite and inside its kind's physical range.
///
/// A humidity `Value` of 140 % cannot be constructed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    kind: SensorKind,
    v: f64,
}

impl Value {
    pub fn new(kind: SensorKind, v: f64) -> Result<Value, DomainError> {
        // NaN/inf first: they are a different fault (encoding bug) from a bad sensor.
        if !v.is_finite() {
            return Err(DomainError::NonFinite(v));
        }
        let (min, max) = kind.valid_range();
        if v < min || v > max {
            return Err(DomainError::OutOfRange {
                kind: kind.as_str(),
                value: v,
                min,
                max,
                unit: kind.default_unit(),
            });
        }
        Ok(Value { kind, v })
    }

    pub fn kind(&self) -> SensorKind {
        self.kind
    }

    pub fn get(&self) -> f64 {
        self.v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_inclusive_bounds() {
        assert_eq!(Value::new(SensorKind::Humidity, 0.0).unwrap().get(), 0.0);
        assert_eq!(
            Value::new(SensorKind::Humidity, 100.0).unwrap().get(),
            100.0
        );
        assert_eq!(
            Value::new(SensorKind::Temperature, -90.0).unwrap().get(),
            -90.0
        );
        let v = Value::new(SensorKind::Temperature, 60.0).unwrap();
        assert_eq!(v.kind(), SensorKind::Temperature);
    }

    #[test]
    fn rejects_out_of_range_naming_the_range() {
        let err = Value::new(SensorKind::Humidity, 140.0).unwrap_err();
        assert_eq!(err.reason(), "out_of_range");
        assert_eq!(
            err.to_string(),
            "humidity value 140 is outside the valid range 0..=100 %RH"
        );
        assert!(Value::new(SensorKind::Humidity, -0.1).is_err());
        let err = Value::new(SensorKind::Temperature, 60.5).unwrap_err();
        assert!(err.to_string().contains("-90..=60 °C"), "{err}");
    }

    #[test]
    fn rejects_non_finite() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = Value::new(SensorKind::Humidity, v).unwrap_err();
            assert_eq!(err.reason(), "non_finite");
        }
    }
}
