//! Line charts (loss and metric curves) as SVG: one colour per group of series (a run),
//! solid or dashed lines (train / validation), the legend beside the plot, integer
//! ticks for integer x values, and a log-scaled y axis when the values span more than
//! two decades.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{ReportError, Result};

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stroke {
    #[default]
    Solid,
    Dashed,
}

/// One named line: (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Series of one group share a colour (a run's train and validation curves).
    pub group: usize,
    pub stroke: Stroke,
}

impl Series {
    /// A solid line in its own colour.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>, group: usize) -> Self {
        Self { name: name.into(), points, group, stroke: Stroke::Solid }
    }

    pub fn dashed(mut self) -> Self {
        self.stroke = Stroke::Dashed;
        self
    }
}

/// Matplotlib's tab20, dark shades first: ten distinct colours, then ten lighter ones.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// The colour of group `g`.
pub fn group_color(g: usize) -> RGBColor {
    PALETTE[g % PALETTE.len()]
}

/// Whether a y range should be drawn on a log scale: all positive, over two decades.
pub fn wants_log_scale(lo: f64, hi: f64) -> bool {
    lo > 0.0 && hi / lo > 100.0
}

type DrawResult = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Draws the series on one chart with a title, labelled axes and a legend.
pub fn line_chart(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| ReportError::Draw { path: path.to_path_buf(), message: e.to_string() };
    let finite: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect())
        .collect();
    let all = || finite.iter().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all() {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let integer_x = all().all(|p| p.0.fract() == 0.0);
    let legend_width = if series.is_empty() {
        0
    } else {
        let longest = series.iter().map(|s| s.name.chars().count()).max().unwrap_or(0) as u32;
        (50 + 8 * longest).min(420)
    };
    let root = SVGBackend::new(path, (820 + legend_width, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (plot, legend) = root.split_horizontally(820);
    let log = wants_log_scale(y0, y1);
    let drawn = if log {
        let range = (y0 / 1.5)..(y1 * 1.5);
        draw(&plot, title, x_label, y_label, (x0..x1, range.log_scale()), integer_x, series, &finite)
    } else {
        let pad = ((y1 - y0) * 0.05).max(1e-6);
        let range = (y0 - pad).min(0.0f64.max(y0 - pad))..(y1 + pad);
        draw(&plot, title, x_label, y_label, (x0..x1, range), integer_x, series, &finite)
    };
    drawn.map_err(|e| err(&e))?;
    draw_legend(&legend, series).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn draw<Y>(
    area: &DrawingArea<SVGBackend, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    (x, y): (std::ops::Range<f64>, Y),
    integer_x: bool,
    series: &[Series],
    finite: &[Vec<(f64, f64)>],
) -> DrawResult
where
    Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
    Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)?;
    let int_ticks = |v: &f64| if v.fract().abs() < 1e-9 { format!("{v:.0}") } else { String::new() };
    let plain = |v: &f64| format!("{v}");
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_label).y_desc(y_label).label_style(("sans-serif", 14));
    if integer_x {
        mesh.x_label_formatter(&int_ticks);
    } else {
        mesh.x_label_formatter(&plain);
    }
    mesh.draw()?;
    for (s, pts) in series.iter().zip(finite) {
        let color = group_color(s.group);
        let style = color.stroke_width(2);
        if pts.len() == 1 {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
        match s.stroke {
            Stroke::Solid => {
                chart.draw_series(LineSeries::new(pts.iter().copied(), style))?;
            }
            Stroke::Dashed => {
                chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 8, 5, style))?;
            }
        }
    }
    Ok(())
}

/// The legend in its own area beside the plot: a line sample and the name per series.
fn draw_legend(area: &DrawingArea<SVGBackend, Shift>, series: &[Series]) -> DrawResult {
    for (i, s) in series.iter().enumerate() {
        let y = 60 + 22 * i as i32;
        let style = group_color(s.group).stroke_width(2);
        match s.stroke {
            Stroke::Solid => area.draw(&PathElement::new(vec![(5, y), (35, y)], style))?,
            Stroke::Dashed => {
                area.draw(&PathElement::new(vec![(5, y), (15, y)], style))?;
                area.draw(&PathElement::new(vec![(22, y), (35, y)], style))?;
            }
        }
        area.draw(&Text::new(s.name.clone(), (42, y - 7), ("sans-serif", 14)))?;
    }
    Ok(())
}
