//! Token positions for the Transformer: fixed sinusoids or a learned table.

use candle_core::{Device, Tensor};
use candle_nn::{Init, VarBuilder};

use super::Positions;
use crate::error::{ModelError, Result};

/// What gets added to the scaled embeddings at each position.
#[derive(Debug, Clone)]
pub enum PositionTable {
    /// `PE[p, 2i] = sin(p / 10000^(2i/d))`, `PE[p, 2i+1] = cos(..)` (Vaswani et al.),
    /// computed up to `len` rows and extended on demand.
    Sinusoidal { table: Tensor },
    /// `weight: (len, d)`, N(0, d^-1/2) like the embeddings.
    Learned { weight: Tensor },
}

/// The sinusoid table `(len, d)`.
pub fn sinusoids(len: usize, d: usize, device: &Device) -> Result<Tensor> {
    let mut v = vec![0f32; len * d];
    for p in 0..len {
        for i in 0..d {
            let exponent = (2 * (i / 2)) as f64 / d as f64;
            let angle = p as f64 / 10000f64.powf(exponent);
            v[p * d + i] = if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32;
        }
    }
    Ok(Tensor::from_vec(v, (len, d), device)?)
}

impl PositionTable {
    /// `len` positions of width `d`; the learned table's variable is `vb`'s `weight`.
    pub fn new(kind: Positions, len: usize, d: usize, vb: VarBuilder) -> Result<Self> {
        Ok(match kind {
            Positions::Sinusoidal => Self::Sinusoidal { table: sinusoids(len, d, vb.device())? },
            Positions::Learned => {
                let stdev = (d as f64).powf(-0.5);
                Self::Learned { weight: vb.get_with_hints((len, d), "weight", Init::Randn { mean: 0.0, stdev })? }
            }
        })
    }

    /// Rows `start..start + len`.
    ///
    /// # Shapes
    /// → `(len, d)`
    pub fn rows(&self, start: usize, len: usize) -> Result<Tensor> {
        match self {
            Self::Sinusoidal { table } => {
                let (have, d) = table.dims2()?;
                if start + len <= have {
                    Ok(table.narrow(0, start, len)?)
                } else {
                    Ok(sinusoids(start + len, d, table.device())?.narrow(0, start, len)?)
                }
            }
            Self::Learned { weight } => {
                let have = weight.dim(0)?;
                if start + len > have {
                    return Err(ModelError::TooLong { len: start + len, max: have, what: "learned position table" });
                }
                Ok(weight.narrow(0, start, len)?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from the formula in PyTorch's tutorial (`pe[:, 0::2] = sin(position *
    /// div_term)`, `div_term = exp(arange(0, d, 2) * (-log(10000) / d))`), printed for
    /// d = 4 at positions 0..3.
    #[test]
    fn sinusoids_match_the_formula() {
        let t: Vec<Vec<f32>> = sinusoids(3, 4, &Device::Cpu).expect("table").to_vec2().expect("vec");
        let want = [
            [0.0, 1.0, 0.0, 1.0],
            [0.841_471, 0.540_302_3, 0.009_999_833, 0.999_95],
            [0.909_297_4, -0.416_146_8, 0.019_998_667, 0.999_8],
        ];
        for (row, w) in t.iter().zip(want) {
            for (a, b) in row.iter().zip(w) {
                assert!((a - b).abs() < 1e-6, "{row:?} vs {w:?}");
            }
        }
    }
}
