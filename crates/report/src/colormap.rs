//! Colormaps for attention heatmaps.

use plotters::style::RGBColor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Colormap {
    /// matplotlib's `bone`: black to white through blue-grey.
    Bone,
    /// ColorBrewer's YlOrRd: light yellow to dark red.
    Ylorrd,
}

impl Colormap {
    /// The color at `t` in `[0, 1]` (clamped), by linear interpolation between anchors.
    pub fn color(self, t: f64) -> RGBColor {
        let anchors: &[(f64, [f64; 3])] = match self {
            // matplotlib's bone: gray * 7/8 + blue-shifted hot * 1/8.
            Self::Bone => &[
                (0.0, [0.0, 0.0, 0.0]),
                (0.365, [0.319, 0.319, 0.444]),
                (0.746, [0.653, 0.778, 0.778]),
                (1.0, [1.0, 1.0, 1.0]),
            ],
            Self::Ylorrd => &[
                (0.0, [1.0, 1.0, 0.8]),
                (0.25, [0.996, 0.851, 0.463]),
                (0.5, [0.992, 0.553, 0.235]),
                (0.75, [0.890, 0.102, 0.110]),
                (1.0, [0.502, 0.0, 0.149]),
            ],
        };
        let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
        let mut rgb = anchors[anchors.len() - 1].1;
        for w in anchors.windows(2) {
            let ((t0, c0), (t1, c1)) = (w[0], w[1]);
            if t <= t1 {
                let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 0.0 };
                rgb = [0, 1, 2].map(|i| c0[i] + f * (c1[i] - c0[i]));
                break;
            }
        }
        let byte = |v: f64| (v * 255.0).round().clamp(0.0, 255.0) as u8;
        RGBColor(byte(rgb[0]), byte(rgb[1]), byte(rgb[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_clamping() {
        assert_eq!(Colormap::Bone.color(0.0), RGBColor(0, 0, 0));
        assert_eq!(Colormap::Bone.color(1.0), RGBColor(255, 255, 255));
        assert_eq!(Colormap::Bone.color(7.0), RGBColor(255, 255, 255));
        assert_eq!(Colormap::Ylorrd.color(0.0), RGBColor(255, 255, 204));
        assert_eq!(Colormap::Ylorrd.color(f64::NAN), RGBColor(255, 255, 204));
    }
}
