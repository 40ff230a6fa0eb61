//! `s2s compare [RUN ...]`: the config keys that differ, the key results, and a
//! comparison folder with overlaid loss curves and side-by-side heatmaps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use s2s_report::{line_chart, Page, Series};

use crate::config::flatten;
use crate::runs::{find_runs, RunSummary};

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub all_keys: bool,
    pub sort: Option<String>,
    pub json: bool,
    pub csv: bool,
    pub out: Option<PathBuf>,
    /// Where to look when no runs are named.
    pub dir: PathBuf,
}

/// The comparison: config columns (differing or all), results, per run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub keys: Vec<String>,
    pub runs: Vec<RunRow>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRow {
    pub run: String,
    pub path: String,
    pub status: String,
    pub config: BTreeMap<String, Option<String>>,
    pub results: BTreeMap<String, Option<f64>>,
}

/// Keys that differ between runs by construction; shown with --all-keys only.
const IGNORED: [&str; 2] = ["run.name", "run.output_dir"];

pub fn build(runs: &[RunSummary], all_keys: bool) -> Comparison {
    let configs: Vec<BTreeMap<String, String>> =
        runs.iter().map(|r| r.config().map(|c| flatten(&c)).unwrap_or_default()).collect();
    let every: BTreeSet<&String> = configs.iter().flat_map(|c| c.keys()).collect();
    let keys: Vec<String> = every
        .into_iter()
        .filter(|k| {
            all_keys
                || (!IGNORED.contains(&k.as_str())
                    && configs.iter().map(|c| c.get(*k)).collect::<BTreeSet<_>>().len() > 1)
        })
        .cloned()
        .collect();
    let rows = runs
        .iter()
        .zip(&configs)
        .map(|(r, c)| RunRow {
            run: r.name.clone(),
            path: r.dir.display().to_string(),
            status: r.status.clone(),
            config: keys.iter().map(|k| (k.clone(), c.get(k).cloned())).collect(),
            results: r.results().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        })
        .collect();
    Comparison { keys, runs: rows }
}

fn cell(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 100.0 || x == x.trunc() => format!("{x:.1}"),
        Some(x) => format!("{x:.4}"),
    }
}

pub fn execute(names: &[PathBuf], opts: &Options) -> Result<Comparison> {
    let runs: Vec<RunSummary> = if names.is_empty() {
        find_runs(&opts.dir)
    } else {
        names
            .iter()
            .map(|n| RunSummary::load(n).ok_or_else(|| anyhow::anyhow!("{} is not a run folder", n.display())))
            .collect::<Result<_>>()?
    };
    if runs.is_empty() {
        bail!("no runs to compare in {}", opts.dir.display());
    }
    let mut cmp = build(&runs, opts.all_keys);
    if let Some(metric) = &opts.sort {
        let known: Vec<String> = cmp.runs[0].results.keys().cloned().collect();
        if !known.contains(metric) {
            bail!("--sort {metric:?}: choose one of {}", known.join(", "));
        }
        let higher = metric.contains("bleu") || metric.contains("chrf") || metric.contains("tokens");
        cmp.runs.sort_by(|a, b| {
            let (x, y) = (a.results[metric], b.results[metric]);
            let o = match (x, y) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            if higher && x.is_some() && y.is_some() {
                o.reverse()
            } else {
                o
            }
        });
    }
    let result_keys: Vec<String> = runs[0].results().iter().map(|(k, _)| k.to_string()).collect();
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&cmp)?);
    } else if opts.csv {
        let mut header = vec!["run".to_string(), "status".into()];
        header.extend(cmp.keys.iter().cloned());
        header.extend(result_keys.iter().cloned());
        println!("{}", header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","));
        for r in &cmp.runs {
            let mut row = vec![r.run.clone(), r.status.clone()];
            row.extend(cmp.keys.iter().map(|k| r.config[k].clone().unwrap_or_default()));
            row.extend(result_keys.iter().map(|k| r.results[k].map(|v| v.to_string()).unwrap_or_default()));
            println!("{}", row.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","));
        }
    } else {
        print_table(&cmp, &result_keys);
    }
    let out = opts.out.clone().unwrap_or_else(|| {
        let (y, mo, d, h, mi, s) = crate::run_dir::utc_parts(std::time::SystemTime::now());
        opts.dir.join(format!("compare-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}"))
    });
    write_folder(&out, &runs, &cmp, &result_keys)?;
    if !opts.json && !opts.csv {
        println!("\ncomparison: {}", out.join("index.html").display());
    }
    Ok(cmp)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn print_table(cmp: &Comparison, result_keys: &[String]) {
    let mut header = vec!["run".to_string()];
    header.extend(cmp.keys.iter().cloned());
    header.push("status".into());
    header.extend(result_keys.iter().cloned());
    let rows: Vec<Vec<String>> = cmp
        .runs
        .iter()
        .map(|r| {
            let mut row = vec![r.run.clone()];
            row.extend(cmp.keys.iter().map(|k| r.config[k].clone().unwrap_or_else(|| "-".into())));
            row.push(r.status.clone());
            row.extend(result_keys.iter().map(|k| cell(r.results[k])));
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].len()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line =
        |cells: &[String]| cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ");
    if cmp.keys.is_empty() {
        println!("(no config keys differ; --all-keys shows them all)");
    }
    println!("{}", line(&header));
    for r in &rows {
        println!("{}", line(r));
    }
}

fn write_folder(out: &Path, runs: &[RunSummary], cmp: &Comparison, result_keys: &[String]) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let mut series = Vec::new();
    for r in runs {
        for col in ["train_loss", "valid_loss"] {
            let pts = r.column(col).to_vec();
            if !pts.is_empty() {
                series.push(Series { name: format!("{} {col}", r.name), points: pts });
            }
        }
    }
    line_chart(&out.join("loss.svg"), "Loss by run", "epoch", "loss (NLL per target token)", &series)?;
    let mut page = Page::new("s2s comparison");
    page.heading(1, &format!("Comparison of {} runs", runs.len()));
    let mut headers = vec!["run".to_string()];
    headers.extend(cmp.keys.iter().cloned());
    let rows: Vec<Vec<Option<String>>> = cmp
        .runs
        .iter()
        .map(|r| std::iter::once(Some(r.run.clone())).chain(cmp.keys.iter().map(|k| r.config[k].clone())).collect())
        .collect();
    page.heading(2, "Config keys that differ").table(&headers, &rows);
    let mut headers = vec!["run".to_string(), "status".into()];
    headers.extend(result_keys.iter().cloned());
    let rows: Vec<Vec<Option<String>>> = cmp
        .runs
        .iter()
        .map(|r| {
            [Some(r.run.clone()), Some(r.status.clone())]
                .into_iter()
                .chain(result_keys.iter().map(|k| r.results[k].map(|v| cell(Some(v)))))
                .collect()
        })
        .collect();
    page.heading(2, "Results").table(&headers, &rows);
    page.heading(2, "Loss curves").svg(&std::fs::read(out.join("loss.svg"))?, "train and validation loss of every run");
    let sentences: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| {
            std::fs::read_dir(r.dir.join("attention"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "svg"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    if !sentences.is_empty() {
        page.heading(2, "Attention, side by side");
        std::fs::create_dir_all(out.join("attention"))?;
    }
    for s in &sentences {
        page.heading(3, s).grid_start();
        for r in runs {
            let p = r.dir.join("attention").join(format!("{s}.svg"));
            match std::fs::read(&p) {
                Ok(svg) => {
                    std::fs::write(out.join("attention").join(format!("{s}--{}.svg", r.name)), &svg)?;
                    page.svg(&svg, &r.name);
                }
                Err(_) => {
                    page.paragraph(&format!("{}: no heatmap for this sentence", r.name));
                }
            }
        }
        page.grid_end();
    }
    std::fs::write(out.join("index.html"), page.render())?;
    std::fs::write(out.join("comparison.json"), serde_json::to_string_pretty(cmp)?)?;
    Ok(())
}
