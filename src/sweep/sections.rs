//! A sweep file's after-training sections (`probe:`, `plane:`, `curvature:`), read with the
//! options of the commands they repeat and checked the same way, one line per mistake.

use super::SweepProbe;
use crate::config::probe::ProbeSpec;
use crate::probe::plane::{PlaneSettings, PlaneSpec};

pub(super) fn sweep_probe(value: &serde_yaml::Value) -> Result<SweepProbe, crate::error::Invalid> {
    let mut map = value
        .as_mapping()
        .cloned()
        .ok_or("expected a mapping with directions: and probe settings")?;
    let directions = map
        .remove("directions")
        .and_then(|v| v.as_u64())
        .ok_or("directions: expected the number of random directions per centre (2 or more)")?
        as usize;
    if !(2..=crate::config::MAX_DIRECTIONS).contains(&directions) {
        return Err(crate::error::Invalid(format!(
            "directions: {directions}: expected 2..={}",
            crate::config::MAX_DIRECTIONS
        )));
    }
    // `range: auto` or `range: R`, as the probe command takes it.
    if let Some(range) = map.remove("range") {
        match range.as_str() {
            Some("auto") => {
                map.entry("auto_range".into()).or_insert(0.5.into());
            }
            _ => {
                let r = range
                    .as_f64()
                    .ok_or("range: expected a half-width or auto")?;
                map.insert("from".into(), (-r).into());
                map.insert("to".into(), r.into());
            }
        }
    }
    let spec: ProbeSpec = serde_yaml::from_value(serde_yaml::Value::Mapping(map))
        .map_err(|e| e.to_string().replace('\n', " "))?;
    if !spec.direction.is_random() {
        return Err(crate::error::Invalid(format!(
            "direction: {} is not random; a sweep probes random directions",
            spec.direction.as_str()
        )));
    }
    spec.validate()?;
    Ok(SweepProbe { directions, spec })
}

/// `plane:` with `valleys plane`'s options under their names (`plane`, `centre`, `direction`,
/// `norm`, `bias_bn`, `params`, `points` as NxM, `x` and `y` as FROM:TO, `bn`, the subsets,
/// `seed`, `point_batch`, and a hessian plane's `eigenvectors` and `hessian_batch`), read and checked as the command line's are
/// ([`PlaneSettings`]); what is not given is the plane's default. `tiles: N` (as `valleys
/// plane --tiles N`) measures it as N jobs.
pub(super) fn sweep_plane(
    value: &serde_yaml::Value,
) -> Result<(PlaneSpec, Option<usize>), crate::error::Invalid> {
    let mut value = value.clone();
    let tiles = match value.as_mapping_mut().and_then(|m| m.remove("tiles")) {
        None => None,
        Some(n) => Some(
            n.as_u64()
                .map(|n| n as usize)
                .ok_or("tiles: expected a number of tiles (bands of rows), e.g. 4")?,
        ),
    };
    let settings: PlaneSettings = settings_from(&value, "plane settings such as points: 11x11")?;
    let spec = settings.spec()?;
    if let Some(n) = tiles {
        crate::probe::plane::tiles::check_tiles(n, spec.points.1).map_err(|e| {
            crate::error::Invalid(format!(
                "tiles {n}: {}",
                e.0.trim_start_matches(&format!("--tiles {n}: "))
            ))
        })?;
    }
    Ok((spec, tiles))
}

/// A section's settings from its YAML value (absent fields at their defaults; `null` all
/// defaults), or one line naming the field that is wrong.
fn settings_from<T: serde::de::DeserializeOwned + Default>(
    value: &serde_yaml::Value,
    expected: &str,
) -> Result<T, crate::error::Invalid> {
    match value {
        serde_yaml::Value::Null => Ok(T::default()),
        serde_yaml::Value::Mapping(_) => serde_path_to_error::deserialize::<_, T>(value.clone())
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string().replace('\n', " ");
                crate::error::Invalid(if path == "." || path.is_empty() {
                    inner
                } else {
                    format!("{path}: {inner}")
                })
            }),
        _ => Err(crate::error::Invalid(format!(
            "expected a mapping of {expected}"
        ))),
    }
}

/// `curvature:` with the fields of an experiment's `curvature:` section (what is not given is
/// `valleys curvature`'s default); tracking while training belongs to the experiment.
pub(super) fn sweep_curvature(
    value: &serde_yaml::Value,
) -> Result<crate::config::curvature::CurvatureSpec, crate::error::Invalid> {
    let spec: crate::config::curvature::CurvatureSpec =
        settings_from(value, "curvature settings such as samples: 256")?;
    if spec.every_epochs.is_some() {
        return Err(crate::error::Invalid(
            "every_epochs: the sweep's curvature job runs after training; to track curvature while training, set curvature.every_epochs under set:".into(),
        ));
    }
    spec.validate()
        .map_err(|e| crate::error::Invalid(e.0.trim_start_matches("curvature.").to_owned()))?;
    Ok(spec)
}

/// `connect:` with `valleys connect`'s options under their names (`iterate`, `pairs`,
/// `points`, `bn`, the subsets, `curve_epochs`).
pub(super) fn sweep_connect(
    value: &serde_yaml::Value,
) -> Result<super::pairs::SweepConnect, crate::error::Invalid> {
    let spec: super::pairs::SweepConnect =
        settings_from(value, "connect settings such as pairs: seeds")?;
    spec.validate()?;
    Ok(spec)
}
