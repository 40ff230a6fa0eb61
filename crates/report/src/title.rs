//! Chart titles that wrap instead of being cut: the first line of a title is the
//! heading, each further line (after a `\n`) a smaller subtitle saying what is shown.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::text::wrap;

/// Heading and subtitle sizes in pixels.
const HEADING_PX: u32 = 18;
const SUBTITLE_PX: u32 = 14;

/// The title's lines, each with its font size, wrapped to `width` pixels.
fn lines(title: &str, width: u32) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for (i, paragraph) in title.split('\n').enumerate() {
        let px = if i == 0 { HEADING_PX } else { SUBTITLE_PX };
        // About half the font size per character in a sans-serif face.
        let chars = (width as usize * 2 / px as usize).max(12);
        out.extend(wrap(paragraph, chars).into_iter().map(|l| (l, px)));
    }
    out
}

/// The height [`draw_title`] takes for `title` at `width` pixels.
pub fn title_height(title: &str, width: u32) -> u32 {
    let lines = lines(title, width);
    if lines.is_empty() {
        return 0;
    }
    8 + lines.iter().map(|(_, px)| px + 6).sum::<u32>()
}

/// Draws `title` centred at the top of `area`; returns the area below it.
pub fn draw_title<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let width = area.dim_in_pixel().0;
    let height = title_height(title, width);
    if height == 0 {
        return Ok(area.clone());
    }
    let (top, rest) = area.split_vertically(height);
    let mut y = 6i32;
    for (line, px) in lines(title, width) {
        let color = if px == HEADING_PX { RGBColor(34, 34, 34) } else { RGBColor(85, 85, 85) };
        let style = ("sans-serif", px).into_font().color(&color).pos(Pos::new(HPos::Center, VPos::Top));
        top.draw(&Text::new(line, (width as i32 / 2, y), style))?;
        y += (px + 6) as i32;
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_titles_take_more_lines_and_subtitles_are_smaller() {
        let short = title_height("a → b", 600);
        let long = title_height(&"a long source sentence ".repeat(8), 600);
        assert!(long > short, "{long} vs {short}");
        let with_sub = lines("a → b\nlayer 2, mean of 4 heads", 600);
        assert_eq!(
            with_sub,
            [("a → b".to_string(), HEADING_PX), ("layer 2, mean of 4 heads".to_string(), SUBTITLE_PX)]
        );
    }
}
