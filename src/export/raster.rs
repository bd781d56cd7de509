//! SVG to PNG with resvg, using only the embedded DejaVu fonts: the same picture on every
//! machine, fonts installed or not.

use resvg::tiny_skia;
use resvg::usvg::{self, fontdb};
use std::sync::{Arc, OnceLock};

/// DejaVu Sans and DejaVu Sans Mono (assets/fonts, Bitstream Vera licence).
pub const SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
pub const MONO: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

fn fonts() -> Arc<fontdb::Database> {
    static DB: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = fontdb::Database::new();
        db.load_font_data(SANS.to_vec());
        db.load_font_data(MONO.to_vec());
        db.set_sans_serif_family("DejaVu Sans");
        db.set_monospace_family("DejaVu Sans Mono");
        db.set_serif_family("DejaVu Sans");
        Arc::new(db)
    })
    .clone()
}

/// Why an SVG could not be rasterised.
#[derive(Debug, thiserror::Error)]
pub enum RasterError {
    #[error("the SVG does not parse: {0}")]
    Parse(String),
    #[error("cannot allocate a {0}x{1} image")]
    Size(u32, u32),
    #[error("cannot encode the PNG: {0}")]
    Encode(String),
}

/// The PNG of `svg` at `scale` (1.0: one pixel per SVG unit).
pub fn png(svg: &str, scale: f32) -> Result<Vec<u8>, RasterError> {
    let options = usvg::Options {
        fontdb: fonts(),
        font_family: "DejaVu Sans".into(),
        ..usvg::Options::default()
    };
    let tree =
        usvg::Tree::from_str(svg, &options).map_err(|e| RasterError::Parse(e.to_string()))?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * scale).round() as u32,
        (size.height() * scale).round() as u32,
    );
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or(RasterError::Size(w, h))?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| RasterError::Encode(e.to_string()))
}
