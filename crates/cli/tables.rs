//! A comparison printed as an aligned table or as CSV.

use crate::output::outln;
use s2s_run::compare::{cell, result_keys, Comparison};

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn print_csv(cmp: &Comparison) -> std::io::Result<()> {
    let keys = result_keys();
    let line = |cells: Vec<String>| outln!("{}", cells.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
    line(
        ["run".to_string(), "status".into()]
            .into_iter()
            .chain(cmp.keys.iter().cloned())
            .chain(keys.iter().cloned())
            .collect(),
    )?;
    for r in &cmp.runs {
        let mut row = vec![r.run.clone(), r.status.clone()];
        row.extend(cmp.keys.iter().map(|k| r.config[k].clone().unwrap_or_default()));
        row.extend(keys.iter().map(|k| r.results[k].map(|v| v.to_string()).unwrap_or_default()));
        line(row)?;
    }
    Ok(())
}

pub fn print_table(cmp: &Comparison) -> std::io::Result<()> {
    // Result columns no run has a figure for are left out.
    let keys = cmp.result_keys_with_values();
    let mut header = vec!["run".to_string()];
    header.extend(cmp.keys.iter().cloned());
    header.push("status".into());
    header.extend(keys.iter().cloned());
    let rows: Vec<Vec<String>> = cmp
        .runs
        .iter()
        .map(|r| {
            let mut row = vec![r.run.clone()];
            row.extend(cmp.keys.iter().map(|k| r.config[k].clone().unwrap_or_else(|| "-".into())));
            row.push(r.status.clone());
            row.extend(keys.iter().map(|k| cell(r.results[k])));
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].len()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line =
        |cells: &[String]| cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ");
    if cmp.keys.is_empty() {
        outln!("(no config keys differ; --all-keys shows them all)")?;
    }
    outln!("{}", line(&header))?;
    for r in &rows {
        outln!("{}", line(r))?;
    }
    Ok(())
}
