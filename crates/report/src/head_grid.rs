//! A Transformer's cross-attention as a grid of small heatmaps: one row per layer, one
//! column per head, each panel the head's weights (generated tokens × source tokens),
//! with one shared color bar.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::colormap::Colormap;
use crate::error::{ReportError, Result};

/// Every layer's and head's attention over one translation.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadGrid<'a> {
    pub title: &'a str,
    /// Column labels (x) of every panel.
    pub source: &'a [String],
    /// Row labels (y) of every panel.
    pub output: &'a [String],
    /// `weights[layer][head][row][col]`.
    pub weights: &'a [Vec<Vec<Vec<f32>>>],
}

/// Panels show token labels up to this many tokens on an axis.
const LABELLED_MAX_TOKENS: usize = 16;
/// Label font size, and the width of one of its characters, in pixels.
const LABEL_PX: u32 = 10;
const LABEL_CHAR_PX: u32 = 6;

/// Whether column labels fit upright under cells `cell` pixels wide.
fn upright(labels: &[String], cell: u32) -> bool {
    labels.iter().all(|l| l.chars().count() as u32 * LABEL_CHAR_PX <= cell)
}

/// A label cut to 16 characters.
fn short(label: &str) -> String {
    label.chars().take(16).collect()
}

/// Draws `grid` as SVG text.
pub fn attention_heads_svg(grid: &HeadGrid, colormap: Colormap) -> Result<String> {
    let err = |message: String| ReportError::Input { what: grid.title.to_string(), message };
    let layers = grid.weights.len();
    let heads = grid.weights.first().map_or(0, Vec::len);
    if layers == 0 || heads == 0 || grid.source.is_empty() || grid.output.is_empty() {
        return Err(err("nothing to draw".into()));
    }
    for (l, layer) in grid.weights.iter().enumerate() {
        if layer.len() != heads {
            return Err(err(format!("layer {l} has {} heads, layer 0 has {heads}", layer.len())));
        }
        for (h, m) in layer.iter().enumerate() {
            if m.len() != grid.output.len() || m.iter().any(|r| r.len() != grid.source.len()) {
                return Err(err(format!(
                    "layer {l}, head {h}: weights are not {} × {}",
                    grid.output.len(),
                    grid.source.len()
                )));
            }
        }
    }
    let labelled = grid.source.len() <= LABELLED_MAX_TOKENS && grid.output.len() <= LABELLED_MAX_TOKENS;
    let longest = |w: &[String]| w.iter().map(|s| s.chars().count()).max().unwrap_or(1).min(16) as u32;
    let cell = if labelled { 18 } else { 8 };
    let x_label = match labelled {
        false => 16,
        true if upright(grid.source, cell) => 20,
        true => 14 + LABEL_CHAR_PX * longest(grid.source),
    };
    let y_label = if labelled { 12 + LABEL_CHAR_PX * longest(grid.output) } else { 16 };
    let panel_w = y_label + 20 + cell * grid.source.len() as u32;
    let panel_h = x_label + 34 + cell * grid.output.len() as u32;
    let w = panel_w * heads as u32 + 90;
    let h = panel_h * layers as u32 + 14 + crate::title::title_height(grid.title, w);
    let draw = |e: &dyn std::fmt::Display| err(e.to_string());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let root = crate::title::draw_title(&root, grid.title).map_err(|e| draw(&e))?;
        let (panels, bar) = root.split_horizontally(panel_w * heads as u32);
        for (area, (l, hd)) in
            panels.split_evenly((layers, heads)).iter().zip((0..layers).flat_map(|l| (0..heads).map(move |h| (l, h))))
        {
            let m = &grid.weights[l][hd];
            let labels = labelled.then(|| upright(grid.source, cell));
            panel(area, grid, m, &format!("layer {l}, head {hd}"), (x_label, y_label), labels, colormap)
                .map_err(|e| draw(&e))?;
        }
        colorbar(&bar, colormap).map_err(|e| draw(&e))?;
        root.present().map_err(|e| draw(&e))?;
    }
    Ok(svg)
}

type DrawResult = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn panel(
    area: &DrawingArea<SVGBackend, Shift>,
    grid: &HeadGrid,
    m: &[Vec<f32>],
    caption: &str,
    (x_label, y_label): (u32, u32),
    // None: no token labels; Some(upright): labels, the column ones upright or turned.
    labels: Option<bool>,
    colormap: Colormap,
) -> DrawResult {
    let (cols, rows) = (grid.source.len(), grid.output.len());
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 13))
        .margin(6)
        .x_label_area_size(x_label)
        .y_label_area_size(y_label)
        .build_cartesian_2d(0f64..cols as f64, rows as f64..0f64)?;
    chart.configure_mesh().disable_mesh().x_labels(0).y_labels(0).set_all_tick_mark_size(0).draw()?;
    if let Some(upright_x) = labels {
        // Labels drawn by hand, a few pixels off the axes: short ones upright and centred
        // under their column, longer ones turned to run down from it.
        let (bx, by) = area.get_base_pixel();
        let at = |x: f64, y: f64| {
            let (px, py) = chart.backend_coord(&(x, y));
            (px - bx, py - by)
        };
        let font = ("sans-serif", LABEL_PX);
        let y_style = font.into_font().into_text_style(area).pos(Pos::new(HPos::Right, VPos::Center));
        for (r, label) in grid.output.iter().enumerate() {
            let (x, y) = at(0.0, r as f64 + 0.5);
            area.draw(&Text::new(short(label), (x - 4, y), y_style.clone()))?;
        }
        let x_style = if upright_x {
            font.into_font().into_text_style(area).pos(Pos::new(HPos::Center, VPos::Top))
        } else {
            font.into_font()
                .transform(FontTransform::Rotate90)
                .into_text_style(area)
                .pos(Pos::new(HPos::Left, VPos::Center))
        };
        for (c, label) in grid.source.iter().enumerate() {
            let (x, y) = at(c as f64 + 0.5, rows as f64);
            area.draw(&Text::new(short(label), (x, y + 4), x_style.clone()))?;
        }
    }
    chart.draw_series(m.iter().enumerate().flat_map(|(r, row)| {
        row.iter().enumerate().map(move |(c, &v)| {
            Rectangle::new(
                [(c as f64, r as f64), (c as f64 + 1.0, r as f64 + 1.0)],
                colormap.color(f64::from(v)).filled(),
            )
        })
    }))?;
    Ok(())
}

fn colorbar(area: &DrawingArea<SVGBackend, Shift>, colormap: Colormap) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .margin_top(30)
        .margin_bottom(40)
        .margin_right(10)
        .y_label_area_size(40)
        .caption("weight", ("sans-serif", 12))
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
    chart.configure_mesh().disable_mesh().disable_x_axis().y_labels(6).label_style(("sans-serif", 11)).draw()?;
    let steps = 128;
    chart.draw_series((0..steps).map(|i| {
        let (a, b) = (i as f64 / steps as f64, ((i + 2) as f64 / steps as f64).min(1.0));
        Rectangle::new([(0.0, a), (1.0, b)], colormap.color((i as f64 + 0.5) / steps as f64).filled())
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_of(layers: usize, heads: usize) -> Vec<Vec<Vec<Vec<f32>>>> {
        (0..layers)
            .map(|l| {
                (0..heads)
                    .map(|h| (0..2).map(|r| (0..3).map(|c| ((l + h + r + c) % 3) as f32 / 2.0).collect()).collect())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn draws_one_captioned_panel_per_layer_and_head() {
        let (src, out) = (vec!["a".to_string(), "b".into(), "EOS".into()], vec!["x".to_string(), "EOS".into()]);
        let w = grid_of(3, 4);
        let svg = attention_heads_svg(
            &HeadGrid { title: "a b → x", source: &src, output: &out, weights: &w },
            Colormap::Bone,
        )
        .expect("svg");
        for l in 0..3 {
            for h in 0..4 {
                assert!(svg.contains(&format!("layer {l}, head {h}")), "panel {l},{h}");
            }
        }
        assert!(!svg.contains("layer 3"));
        // 12 panels of 2 × 3 cells (plus the color bar's bands).
        assert!(svg.matches("<rect").count() >= 12 * 6);
    }

    #[test]
    fn refuses_ragged_weights() {
        let (src, out) = (vec!["a".to_string(), "b".into(), "EOS".into()], vec!["x".to_string(), "EOS".into()]);
        let mut w = grid_of(2, 2);
        w[1].pop();
        let e = attention_heads_svg(&HeadGrid { title: "t", source: &src, output: &out, weights: &w }, Colormap::Bone)
            .expect_err("ragged");
        assert!(e.to_string().contains("layer 1 has 1 heads"), "{e}");
    }
}
