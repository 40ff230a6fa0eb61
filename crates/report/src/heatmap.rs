//! Attention heatmaps: source words on x, generated words on y, with a color bar.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::colormap::Colormap;
use crate::error::{ReportError, Result};

/// One attention matrix to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap<'a> {
    pub title: &'a str,
    /// Column labels (x).
    pub source: &'a [String],
    /// Row labels (y), one per row of `weights`.
    pub output: &'a [String],
    /// `weights[row][col]` in [0, 1].
    pub weights: &'a [Vec<f32>],
    /// Print each weight in its cell (seaborn's `annot`).
    pub annotate: bool,
}

/// Sentences longer than this (in tokens, on either axis) are not annotated: the
/// numbers would not fit their cells.
pub const ANNOTATE_MAX_TOKENS: usize = 12;

impl Heatmap<'_> {
    /// Whether a map of this size can carry its numbers.
    pub fn fits_annotations(source: usize, output: usize) -> bool {
        source <= ANNOTATE_MAX_TOKENS && output <= ANNOTATE_MAX_TOKENS
    }
}

/// Writes `map` as an SVG file.
pub fn attention_heatmap(path: &Path, map: &Heatmap, colormap: Colormap) -> Result<()> {
    let svg = attention_heatmap_svg(map, colormap)?;
    std::fs::write(path, svg).map_err(|e| ReportError::Draw { path: path.to_path_buf(), message: e.to_string() })
}

/// Draws `map` as SVG text.
pub fn attention_heatmap_svg(map: &Heatmap, colormap: Colormap) -> Result<String> {
    check(map)?;
    let err = |e: &dyn std::fmt::Display| ReportError::Input { what: map.title.to_string(), message: e.to_string() };
    let (cell_w, cell_h) = cell_size(map);
    let longest_x = map.source.iter().map(|w| w.chars().count()).max().unwrap_or(1) as u32;
    let w = 220 + cell_w * map.source.len() as u32;
    let h = 150
        + cell_h * map.output.len() as u32
        + if rotated(map) { 8 * longest_x.min(24) } else { 0 }
        + crate::title::title_height(map.title, w.max(480) - 110);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w.max(480), h.max(300))).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let width = root.dim_in_pixel().0;
        let (left, right) = root.split_horizontally(width - 110);
        draw_matrix(&left, map, colormap).map_err(|e| err(&e))?;
        draw_colorbar(&right, colormap).map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

fn check(map: &Heatmap) -> Result<()> {
    let bad = |message: String| Err(ReportError::Input { what: map.title.to_string(), message });
    if map.weights.len() != map.output.len() {
        return bad(format!("{} rows of weights for {} output words", map.weights.len(), map.output.len()));
    }
    if let Some(r) = map.weights.iter().find(|r| r.len() != map.source.len()) {
        return bad(format!("a row of {} weights for {} source words", r.len(), map.source.len()));
    }
    if map.source.is_empty() || map.output.is_empty() {
        return bad("nothing to draw".into());
    }
    Ok(())
}

type DrawResult = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw_matrix(area: &DrawingArea<SVGBackend, Shift>, map: &Heatmap, colormap: Colormap) -> DrawResult {
    let (cols, rows) = (map.source.len(), map.output.len());
    // Label areas just wide enough for the words, so the axis titles sit by the axes.
    let longest = map.output.iter().map(|w| w.chars().count()).max().unwrap_or(1) as u32;
    let longest_x = map.source.iter().map(|w| w.chars().count()).max().unwrap_or(1) as u32;
    let rotate = rotated(map);
    let font = if cell_size(map).0 < 60 { 12 } else { 14 };
    // The title wraps onto as many lines as it needs (a long sentence is never cut).
    let area = &crate::title::draw_title(area, map.title)?;
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(if rotate { 40 + 8 * longest_x.min(24) } else { 48 })
        .y_label_area_size(36 + 8 * longest.min(24))
        .build_cartesian_2d(0f64..cols as f64, rows as f64..0f64)?;
    let src = map.source;
    // Upright column labels come from plotters, at the cells' centres; the row labels and
    // turned column labels are drawn by hand a few pixels off the axes (plotters puts
    // tick-less labels against the axis, and centres vertical text on it).
    let x_labels = if rotate { 0 } else { cols * 2 + 1 };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(x_labels)
        .y_labels(0)
        .x_label_formatter(&|x| label_at(src, *x))
        .set_all_tick_mark_size(0)
        .x_desc(if rotate { "" } else { "source tokens" })
        .y_desc("generated tokens")
        .label_style(("sans-serif", font))
        .draw()?;
    // Chart coordinates are the backend's; the area below the title starts lower.
    let (bx, by) = area.get_base_pixel();
    let at = |x: f64, y: f64| {
        let (px, py) = chart.backend_coord(&(x, y));
        (px - bx, py - by)
    };
    let row_style = ("sans-serif", font).into_font().into_text_style(area).pos(Pos::new(HPos::Right, VPos::Center));
    for (r, label) in map.output.iter().enumerate() {
        let (x, y) = at(0.0, r as f64 + 0.5);
        area.draw(&Text::new(label.clone(), (x - 6, y), row_style.clone()))?;
    }
    if rotate {
        // Each label starts just below its column and runs down, turned a quarter clockwise.
        let style = ("sans-serif", font)
            .into_font()
            .transform(FontTransform::Rotate90)
            .into_text_style(area)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let mut bottom = 0;
        for (c, label) in src.iter().enumerate() {
            let (x, y) = at(c as f64 + 0.5, rows as f64);
            area.draw(&Text::new(label.clone(), (x, y + 6), style.clone()))?;
            bottom = bottom.max(y + 12 + 8 * label.chars().count() as i32);
        }
        let (left, _) = at(0.0, rows as f64);
        let (right, _) = at(cols as f64, rows as f64);
        let desc = ("sans-serif", 14).into_font().into_text_style(area).pos(Pos::new(HPos::Center, VPos::Top));
        area.draw(&Text::new("source tokens", ((left + right) / 2, bottom + 4), desc))?;
    }
    chart.draw_series(map.weights.iter().enumerate().flat_map(|(r, row)| {
        row.iter().enumerate().map(move |(c, &v)| {
            Rectangle::new(
                [(c as f64, r as f64), (c as f64 + 1.0, r as f64 + 1.0)],
                colormap.color(f64::from(v)).filled(),
            )
        })
    }))?;
    if map.annotate {
        chart.draw_series(map.weights.iter().enumerate().flat_map(|(r, row)| {
            row.iter().enumerate().map(move |(c, &v)| {
                let cell = colormap.color(f64::from(v));
                let light = 0.299 * f64::from(cell.0) + 0.587 * f64::from(cell.1) + 0.114 * f64::from(cell.2) > 140.0;
                let ink: &'static RGBColor = if light { &BLACK } else { &WHITE };
                let style = TextStyle::from(("sans-serif", 13).into_font())
                    .color(ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                Text::new(format!("{v:.2}"), (c as f64 + 0.5, r as f64 + 0.5), style)
            })
        }))?;
    }
    Ok(())
}

/// Cell width and height in pixels: roomy for short sentences, smaller for long ones so
/// that a 50-token sentence stays about 1,500 pixels wide.
fn cell_size(map: &Heatmap) -> (u32, u32) {
    let shrink = |n: usize, roomy: u32, least: u32| {
        if n <= ANNOTATE_MAX_TOKENS {
            roomy
        } else {
            (roomy * 12 / n as u32).max(least)
        }
    };
    (shrink(map.source.len(), 60, 26), shrink(map.output.len(), 40, 22))
}

/// Column labels turn vertical when they would overlap: long sentences or long tokens.
fn rotated(map: &Heatmap) -> bool {
    let (cell_w, _) = cell_size(map);
    let longest = map.source.iter().map(|w| w.chars().count()).max().unwrap_or(1) as u32;
    longest * 8 > cell_w
}

/// The word whose cell centre is at `pos` (labels sit at half-integers), or "".
fn label_at(words: &[String], pos: f64) -> String {
    let frac = pos - pos.floor();
    if (frac - 0.5).abs() > 1e-6 || pos < 0.0 {
        return String::new();
    }
    words.get(pos.floor() as usize).cloned().unwrap_or_default()
}

fn draw_colorbar(area: &DrawingArea<SVGBackend, Shift>, colormap: Colormap) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(90)
        .margin_right(10)
        .y_label_area_size(45)
        .caption("weight", ("sans-serif", 14))
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
    chart.configure_mesh().disable_mesh().disable_x_axis().y_labels(6).label_style(("sans-serif", 12)).draw()?;
    // Many thin bands, each overlapping the next, so neither steps nor seams show.
    let steps = 256;
    chart.draw_series((0..steps).map(|i| {
        let (a, b) = (i as f64 / steps as f64, ((i + 2) as f64 / steps as f64).min(1.0));
        Rectangle::new([(0.0, a), (1.0, b)], colormap.color((i as f64 + 0.5) / steps as f64).filled())
    }))?;
    Ok(())
}
