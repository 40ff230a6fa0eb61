//! `report.html`: a run folder on one self-contained page.

use s2s_report::Page;

use crate::error::{Result, RunError};
use crate::report::artifacts::svgs_in;
use crate::run_dir::{write_atomic, RunDir};
use crate::summary::RunSummary;

fn fmt(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

/// Writes `report.html` from what the folder holds.
pub fn write_report(dir: &RunDir) -> Result<()> {
    let Some(run) = RunSummary::load(dir.path()) else {
        return Err(RunError::Refused(format!("{} is not a run folder", dir.path().display())));
    };
    let mut page = Page::new(&format!("s2s run {}", run.name));
    page.heading(1, &format!("Run {}", run.name));
    let mut summary: Vec<Vec<Option<String>>> = vec![vec![Some("status".into()), Some(run.status.clone())]];
    if let Some(i) = &run.info {
        for (k, v) in [
            ("started", i.started_at.clone()),
            ("ended", i.ended_at.clone().unwrap_or_default()),
            ("seed", i.seed.to_string()),
            ("device", i.device.clone()),
            ("version", i.program_version.clone()),
            ("parameters", i.parameters.total.to_string()),
            ("train / valid pairs", format!("{} / {}", i.data.train_pairs, i.data.valid_pairs)),
            ("data fingerprint", i.data.fingerprint.clone()),
        ] {
            summary.push(vec![Some(k.into()), Some(v)]);
        }
        for (k, v) in &i.final_metrics {
            summary.push(vec![Some(k.clone()), Some(v.to_string())]);
        }
    }
    page.heading(2, "Summary").table(&["".into(), "".into()], &summary);

    if let Ok(svg) = std::fs::read(dir.loss_svg()) {
        page.heading(2, "Loss").svg(&svg, "loss curves");
    }

    let headers: Vec<String> = run.metrics.iter().map(|(k, _)| k.clone()).collect();
    let epochs = run.column("train_loss").len();
    let rows: Vec<Vec<Option<String>>> = (0..epochs)
        .map(|i| {
            let epoch = run.column("train_loss")[i].0;
            run.metrics
                .iter()
                .map(|(k, pts)| {
                    if k == "epoch" {
                        return Some(format!("{epoch}"));
                    }
                    pts.iter().find(|p| p.0 == epoch).map(|p| fmt(p.1))
                })
                .collect()
        })
        .collect();
    page.heading(2, "Metrics").table(&headers, &rows);

    let att = dir.attention();
    let svgs = svgs_in(&att);
    if !svgs.is_empty() {
        page.heading(2, "Attention").grid_start();
        for p in &svgs {
            if let Ok(svg) = std::fs::read(p) {
                page.svg(&svg, &p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
            }
        }
        page.grid_end();
    }
    let mut epochs_dirs: Vec<_> =
        std::fs::read_dir(&att).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    epochs_dirs.sort();
    if !epochs_dirs.is_empty() {
        page.heading(2, "Attention over training");
        for d in &epochs_dirs {
            page.heading(3, &d.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()).grid_start();
            for p in svgs_in(d) {
                if let Ok(svg) = std::fs::read(&p) {
                    page.svg(&svg, &p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
                }
            }
            page.grid_end();
        }
    }
    if let Ok(t) = std::fs::read_to_string(dir.translations_txt()) {
        page.heading(2, "Translations").paragraph("> source, = reference, < model").preformatted(&t);
    }
    if let Ok(c) = std::fs::read_to_string(dir.config_toml()) {
        page.heading(2, "Resolved config").preformatted(&c);
    }
    write_atomic(&dir.report_html(), page.render().as_bytes())
}
