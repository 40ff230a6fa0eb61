//! An attention heatmap as text for a terminal: one row per generated token, one column
//! per source token, each cell a Unicode shade and the weight (`▓0.71`).

/// Shades from no weight to all of it.
const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];

/// The shade of a weight in [0, 1].
fn shade(w: f32) -> char {
    let i = (w.clamp(0.0, 1.0) * (SHADES.len() - 1) as f32).round() as usize;
    SHADES[i.min(SHADES.len() - 1)]
}

/// `weights[row][col]` under a header of `source` labels, each row led by its `output`
/// label. Rows or columns beyond the labels are left out.
pub fn terminal_heatmap(source: &[String], output: &[String], weights: &[Vec<f32>]) -> String {
    let width = |s: &str| s.chars().count();
    let cell_w: Vec<usize> = source.iter().map(|s| width(s).max(5)).collect();
    let row_w = output.iter().map(|s| width(s)).max().unwrap_or(0);
    let mut out = format!("{:row_w$}", "");
    for (label, w) in source.iter().zip(&cell_w) {
        out.push_str(&format!(" {label:>w$}"));
    }
    out.push('\n');
    for (label, row) in output.iter().zip(weights) {
        out.push_str(&format!("{label:>row_w$}"));
        for (&v, w) in row.iter().zip(&cell_w) {
            out.push_str(&format!(" {:>w$}", format!("{}{v:.2}", shade(v))));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_output_token_with_shades_and_weights() {
        let src: Vec<String> = ["i", "am", "EOS"].map(String::from).to_vec();
        let out: Vec<String> = ["je", "suis", "EOS"].map(String::from).to_vec();
        let w = vec![vec![0.98, 0.01, 0.01], vec![0.2, 0.7, 0.1], vec![0.0, 0.0, 1.0]];
        let text = terminal_heatmap(&src, &out, &w);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].contains("i") && lines[0].contains("am") && lines[0].contains("EOS"));
        assert!(lines[1].trim_start().starts_with("je") && lines[1].contains("█0.98"), "{text}");
        assert!(lines[2].contains("▓0.70") && lines[2].contains("░0.20"), "{text}");
        assert!(lines[3].contains(" 0.00") && lines[3].contains("█1.00"), "{text}");
        // Columns line up: every line is as wide as the header.
        let widths: Vec<usize> = lines.iter().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{widths:?}");
    }
}
