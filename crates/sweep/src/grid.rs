//! Sweep grids: `key=v1,v2` options, every combination of them, and a run name per point.

use s2s_run::error::{Result, RunError};

/// One grid axis: a config key and its values.
pub type Axis = (String, Vec<String>);

/// Parses `key=v1,v2` into an axis.
pub fn parse_axis(g: &str) -> Result<Axis> {
    let bad = || RunError::Refused(format!("--grid {g:?}: expected key=v1,v2,..."));
    let (k, vs) = g.split_once('=').ok_or_else(bad)?;
    let values: Vec<String> = vs.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
    if k.trim().is_empty() || values.is_empty() {
        return Err(bad());
    }
    Ok((k.trim().to_string(), values))
}

/// Every combination of the grid's values, as (key, value) overrides.
pub fn points(grid: &[Axis]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (k, vs) in grid {
        out = out
            .into_iter()
            .flat_map(|p| vs.iter().map(move |v| [p.clone(), vec![(k.clone(), v.clone())]].concat()))
            .collect();
    }
    out
}

/// `learning_rate=0.01-hidden_size=128`: the last key segment and the value, file-name safe.
pub fn label(p: &[(String, String)]) -> String {
    p.iter()
        .map(|(k, v)| {
            let key = k.rsplit('.').next().unwrap_or(k);
            let val: String =
                v.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
            format!("{key}={val}")
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_points_and_labels() {
        let g = vec![
            parse_axis("train.learning_rate=0.01,0.001").expect("g"),
            parse_axis("model.hidden_size=128,256").expect("g"),
        ];
        let p = points(&g);
        assert_eq!(p.len(), 4);
        assert_eq!(label(&p[1]), "learning_rate=0.01-hidden_size=256");
        assert!(parse_axis("nope").is_err());
        assert!(parse_axis("a=").is_err());
    }
}
