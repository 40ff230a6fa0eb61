//! SVG to PNG with resvg (pure Rust), for pictures that must be bitmaps (TensorBoard's
//! images). Text is set with the system's fonts, loaded once.

use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

use s2s_report::ReportError;

type Result<T, E = ReportError> = std::result::Result<T, E>;

fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS.get_or_init(|| Arc::new(load_fonts())).clone()
}

/// One sans-serif family of this machine's fonts, read into memory once. Our SVGs ask for
/// "sans-serif", which fontdb maps to Arial unless told otherwise; and fonts left on disk
/// would be read again for every piece of text.
fn load_fonts() -> usvg::fontdb::Database {
    // The usual place of the usual font first: scanning every system font costs more
    // than a whole small training run.
    for (family, path) in [
        ("DejaVu Sans", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        ("Liberation Sans", "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
    ] {
        if let Ok(bytes) = std::fs::read(path) {
            let mut db = usvg::fontdb::Database::new();
            db.load_font_data(bytes);
            db.set_sans_serif_family(family);
            db.set_serif_family(family);
            return db;
        }
    }
    let mut system = usvg::fontdb::Database::new();
    system.load_system_fonts();
    let family_of = |f: &usvg::fontdb::FaceInfo| f.families.first().map(|(name, _)| name.clone());
    let families: Vec<String> = system.faces().filter_map(family_of).collect();
    let preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica"];
    let Some(family) =
        preferred.iter().map(|p| p.to_string()).find(|p| families.contains(p)).or(families.first().cloned())
    else {
        return system; // no fonts at all: text is left out, the rest still draws
    };
    let mut db = usvg::fontdb::Database::new();
    for face in system.faces().filter(|f| family_of(f).as_deref() == Some(family.as_str())) {
        if let usvg::fontdb::Source::File(path) = &face.source {
            if let Ok(bytes) = std::fs::read(path) {
                db.load_font_data(bytes);
            }
        }
    }
    db.set_sans_serif_family(family.clone());
    db.set_serif_family(family);
    db
}

/// Rasterizes `svg` at its own size on white; returns the PNG bytes, width and height.
pub fn svg_to_png(svg: &str) -> Result<(Vec<u8>, u32, u32)> {
    let err = |message: String| ReportError::Input { what: "SVG to PNG".into(), message };
    let options = usvg::Options { fontdb: fonts(), ..Default::default() };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| err(e.to_string()))?;
    let size = tree.size().to_int_size();
    let (w, h) = (size.width().max(1), size.height().max(1));
    let mut pixmap = tiny_skia::Pixmap::new(w, h).ok_or_else(|| err(format!("cannot make a {w}x{h} image")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::identity(), &mut pixmap.as_mut());
    let png = pixmap.encode_png().map_err(|e| err(e.to_string()))?;
    Ok((png, w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heatmap_rasterizes_to_a_png_of_its_size() {
        let words = ["a".to_string(), "b".to_string()];
        let map = s2s_report::Heatmap {
            title: "t",
            source: &words,
            output: &words,
            weights: &[vec![1.0, 0.0], vec![0.2, 0.8]],
            annotate: true,
        };
        let svg = s2s_report::attention_heatmap_svg(&map, s2s_report::Colormap::Bone).expect("svg");
        let (png, w, h) = svg_to_png(&svg).expect("png");
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!((w, h), (480, 300));
        let pixmap = tiny_skia::Pixmap::decode_png(&png).expect("decodes");
        let px = |x: u32, y: u32| pixmap.pixel(x, y).map(|p| (p.red(), p.green(), p.blue())).expect("pixel");
        let dark = |c: (u8, u8, u8)| c.0 < 60 && c.1 < 60 && c.2 < 60;
        // The background is white; the weight-0 cells are black (bone's 0).
        assert_eq!(px(1, 1), (255, 255, 255));
        let cells = (0..w).flat_map(|x| (0..h).map(move |y| (x, y))).filter(|&(x, y)| dark(px(x, y))).count();
        assert!(cells > 2000, "{cells} dark pixels: no black cells drawn");
        // Text was set: the title row (above the matrix) has dark pixels, which only the
        // title's glyphs can give.
        let title = (0..w).flat_map(|x| (0..28).map(move |y| (x, y))).filter(|&(x, y)| dark(px(x, y))).count();
        assert!(title > 5, "no glyphs in the title row: fonts missing?");
    }
}
