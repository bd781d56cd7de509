//! Floats that survive a trip through JSON whatever their value. JSON has no NaN or infinity
//! (serde_json writes them as `null`, which then fails to read back as a number), yet a probe
//! far out on its line or a diverged run measures exactly those. They are written as the
//! strings "NaN", "Infinity" and "-Infinity" (Python's and JavaScript's spellings) and read
//! back from those, from numbers, and from `null` (as NaN, for files written before).
//!
//! Use with `#[serde(with = "crate::nonfinite")]`, or `crate::nonfinite::vec` for `Vec<f64>`.

use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    match word(*v) {
        Some(w) => s.serialize_str(w),
        None => s.serialize_f64(*v),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Float::deserialize(d)?.0)
}

fn word(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("Infinity")
    } else if v == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// One float as written by [`serialize`] (or as a plain number or null).
struct Float(f64);

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Word(String),
            Null(()),
        }
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(Self(v)),
            Repr::Null(()) => Ok(Self(f64::NAN)),
            Repr::Word(w) => match w.as_str() {
                "NaN" | "nan" => Ok(Self(f64::NAN)),
                "Infinity" | "inf" => Ok(Self(f64::INFINITY)),
                "-Infinity" | "-inf" => Ok(Self(f64::NEG_INFINITY)),
                other => Err(serde::de::Error::custom(format!(
                    "'{other}': expected a number, NaN, Infinity or -Infinity"
                ))),
            },
        }
    }
}

/// The same for a list of floats.
pub mod vec {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            match super::word(*x) {
                Some(w) => seq.serialize_element(w)?,
                None => seq.serialize_element(x)?,
            }
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<super::Float>::deserialize(d)?
            .into_iter()
            .map(|f| f.0)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct Row {
        #[serde(with = "super")]
        x: f64,
        #[serde(with = "super::vec")]
        xs: Vec<f64>,
    }

    #[test]
    fn every_float_round_trips_through_json() {
        let row = Row {
            x: f64::NAN,
            xs: vec![1.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -0.25],
        };
        let text = serde_json::to_string(&row).unwrap();
        assert_eq!(
            text,
            r#"{"x":"NaN","xs":[1.5,"Infinity","-Infinity","NaN",-0.25]}"#
        );
        let back: Row = serde_json::from_str(&text).unwrap();
        assert!(back.x.is_nan());
        assert_eq!(back.xs[..3], [1.5, f64::INFINITY, f64::NEG_INFINITY]);
        assert!(back.xs[3].is_nan() && back.xs[4] == -0.25);
        let legacy: Row = serde_json::from_str(r#"{"x": null, "xs": [null, 2]}"#).unwrap();
        assert!(legacy.x.is_nan() && legacy.xs[0].is_nan() && legacy.xs[1] == 2.0);
        let err = serde_json::from_str::<Row>(r#"{"x": "lots", "xs": []}"#).unwrap_err();
        assert!(err.to_string().contains("expected a number"), "{err}");
    }
}
