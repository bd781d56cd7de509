//! `valleys probe --direction sign-match --ratios FROM:TO:STEP`: a batch of sign-match
//! directions at each ratio and the table of the asymmetry against it.

use super::{Console, print_batch};
use std::io::Write;
use valleys::probe::runner::{self, ProbeError};

/// `--ratios FROM:TO:STEP`, as the ratios it gives (one value to clap, not a list of them).
#[derive(Debug, Clone, PartialEq)]
pub struct RatioList(pub Vec<f64>);

pub(super) fn parse_ratio_list(text: &str) -> Result<RatioList, String> {
    valleys::probe::ratios::parse_ratios(text)
        .map(RatioList)
        .map_err(|e| e.0)
}

/// A batch of sign-match directions at each ratio, each printed and stored as a batch, then
/// the table against the ratio, written to probes/<first batch>-ratios.csv as well.
pub(super) fn sweep_ratios(
    ctx: &runner::ProbeContext,
    spec: &valleys::probe::ProbeSpec,
    directions: usize,
    ratios: &[f64],
    run: &valleys::rundir::RunDir,
    console: &mut Console,
    out: &mut impl Write,
) -> Result<std::io::Result<()>, ProbeError> {
    use valleys::probe::ratios;
    let mut rows = Vec::new();
    let mut first_id = None;
    for &ratio in ratios {
        let spec = valleys::probe::ProbeSpec {
            ratio: Some(ratio),
            ..spec.clone()
        };
        let batch = runner::run_batch(ctx, &spec, directions, Some(run), console)?;
        if let Err(e) = print_batch(out, &batch) {
            return Ok(Err(e));
        }
        let (probes, _) = valleys::probe::store::read_all(run);
        rows.extend(ratios::rows(ratio, &batch, &probes));
        first_id.get_or_insert(batch.id);
    }
    let path = valleys::probe::store::dir(run)
        .join(format!("{}-ratios.csv", first_id.unwrap_or_default()));
    valleys::rundir::write_atomic(&path, ratios::csv(&rows).as_bytes())?;
    Ok((|| {
        writeln!(
            out,
            "sign-match sweep: {directions} directions per centre and ratio; the training loss's rise from the centre at t = −T and +T"
        )?;
        for line in ratios::table(&rows) {
            writeln!(out, "{line}")?;
        }
        writeln!(out, "wrote {}", path.display())
    })())
}
