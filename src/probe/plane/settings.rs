//! What a plane is asked for, read the same way from `valleys plane`'s flags, a sweep's
//! `plane:` section and the dashboard's form.

use super::{PlaneKind, PlaneSpec, parse_eigenvectors, parse_points, parse_range};
use crate::probe::{BiasBn, BnMode, CentreKind, DirectionKind, Normalisation, ParamGroup};
use serde::Deserialize;

/// What a plane is asked for, as `valleys plane`'s flags, a sweep's `plane:` section and the
/// dashboard's form give it, with the same names: every setting optional, the plane's
/// defaults for the rest. One type and one set of checks ([`PlaneSettings::spec`]) for all
/// three, so a sweep takes exactly the options the command line takes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaneSettings {
    pub plane: Option<PlaneKind>,
    pub centre: Option<CentreKind>,
    pub direction: Option<DirectionKind>,
    pub norm: Option<Normalisation>,
    pub bias_bn: Option<BiasBn>,
    pub params: Option<ParamGroup>,
    /// "NxM" (or "N" for N×N), as text.
    #[serde(default, deserialize_with = "points_text")]
    pub points: Option<(usize, usize)>,
    /// "FROM:TO".
    #[serde(default, deserialize_with = "range_text")]
    pub x: Option<(f64, f64)>,
    #[serde(default, deserialize_with = "range_text")]
    pub y: Option<(f64, f64)>,
    pub bn: Option<BnMode>,
    #[serde(
        default,
        deserialize_with = "crate::config::probe::samples::deserialize"
    )]
    pub train_subset: Option<usize>,
    #[serde(
        default,
        deserialize_with = "crate::config::probe::samples::deserialize"
    )]
    pub test_subset: Option<usize>,
    #[serde(
        default,
        deserialize_with = "crate::config::probe::samples::deserialize"
    )]
    pub bn_subset: Option<usize>,
    pub seed: Option<u64>,
    pub point_batch: Option<usize>,
    /// "K1,K2": the eigenvectors a `hessian` plane spans.
    #[serde(default, deserialize_with = "eigenvectors_text")]
    pub eigenvectors: Option<(usize, usize)>,
    pub hessian_batch: Option<usize>,
}

impl PlaneSettings {
    /// The plane these settings ask for, or one line naming the setting and what was expected.
    pub fn spec(&self) -> Result<PlaneSpec, crate::error::Invalid> {
        let kind = self.plane.unwrap_or_default();
        if let (Some(centre), PlaneKind::SwaSgd) = (self.centre, kind) {
            return Err(crate::error::Invalid(format!(
                "centre {}: a swa-sgd plane is centred on SWA by definition; centre is for plane random, hessian or pca",
                centre.as_str()
            )));
        }
        if matches!(kind, PlaneKind::Hessian | PlaneKind::Pca)
            && let Some((name, _)) = [
                ("direction", self.direction.is_some()),
                ("norm", self.norm.is_some()),
                ("bias_bn", self.bias_bn.is_some()),
            ]
            .into_iter()
            .find(|(_, given)| *given)
        {
            let what = match kind {
                PlaneKind::Pca => "the trajectory's principal directions",
                _ => "Hessian eigenvectors",
            };
            return Err(crate::error::Invalid(format!(
                "{name}: a {} plane's directions are {what}; {name} is for plane swa-sgd or random",
                kind.as_str()
            )));
        }
        crate::config::probe::check_point_batch(self.point_batch)?;
        let mut s = PlaneSpec::for_kind(kind);
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { s.$field = v; } )* };
        }
        set!(centre, direction, norm, bias_bn, params, points, x, y, bn);
        s.train_subset = self.train_subset;
        s.test_subset = self.test_subset;
        s.bn_subset = self.bn_subset.or(s.bn_subset);
        s.seed = self.seed;
        s.point_batch = self.point_batch;
        s.eigenvectors = self.eigenvectors;
        s.hessian_batch = self.hessian_batch;
        s.validate()?;
        Ok(s)
    }
}

/// A grid or range given as text: YAML reads a bare number (even `0x3`, as hexadecimal 3) as
/// one number, which is neither NxM nor FROM:TO.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Text(String),
    /// Anything else (a bare number, a list, a map): named in the error, so that `x: [-1, 1]`
    /// is told the form.
    Other(serde_yaml::Value),
}

impl Written {
    /// The value as the user wrote it, in flow YAML.
    fn shown(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Other(v) => serde_json::to_string(v).unwrap_or_else(|_| "that value".into()),
        }
    }
}

fn points_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<(usize, usize)>, D::Error> {
    match Option::<Written>::deserialize(d)? {
        None => Ok(None),
        Some(Written::Text(t)) => parse_points(&t).map(Some).map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!(
            "{}: expected NxM grid points as text, e.g. 21x21 (YAML reads a bare number, even 0x3, as one number)",
            other.shown()
        ))),
    }
}

fn range_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<(f64, f64)>, D::Error> {
    match Option::<Written>::deserialize(d)? {
        None => Ok(None),
        Some(Written::Text(t)) => parse_range(&t).map(Some).map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!(
            "{}: expected a range FROM:TO as text, e.g. '-0.5:1.5'",
            other.shown()
        ))),
    }
}

fn eigenvectors_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<(usize, usize)>, D::Error> {
    match Option::<Written>::deserialize(d)? {
        None => Ok(None),
        Some(Written::Text(t)) => parse_eigenvectors(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
        Some(other) => Err(serde::de::Error::custom(format!(
            "{}: expected two eigenvectors as text K1,K2, e.g. '1,2'",
            other.shown()
        ))),
    }
}
