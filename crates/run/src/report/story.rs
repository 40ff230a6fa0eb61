//! The top of report.html: what was trained, in one line, and how it went.

use crate::config::ExperimentConfig;
use crate::report::number::fmt;
use crate::summary::RunSummary;

/// A config value's name as written in TOML (`"adam"`, `"inverse_sqrt"`).
fn name_of<T: serde::Serialize + std::fmt::Debug>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{v:?}").to_lowercase(),
    }
}

/// An integer with thousands separators (`240,540`).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The model and its training in a line: family, sizes, parameters, optimizer, learning
/// rate and schedule, batch, epochs.
pub fn model_line(cfg: &ExperimentConfig, parameters: Option<u64>) -> String {
    let t = &cfg.train;
    let mut parts = vec![cfg.model.family.as_family().describe()];
    if let Some(p) = parameters {
        parts.push(format!("{} parameters", thousands(p)));
    }
    let schedule = match name_of(&t.lr_schedule).as_str() {
        "constant" => String::new(),
        other if t.warmup_steps > 0 => format!(", {other} after {} warm-up steps", t.warmup_steps),
        other => format!(", {other}"),
    };
    parts.push(format!("{}, learning rate {}{schedule}", name_of(&t.optimizer), t.learning_rate));
    let batch = if cfg.task.batch_tokens > 0 {
        format!("batches of up to {} tokens", thousands(cfg.task.batch_tokens as u64))
    } else {
        format!("batches of {}", t.batch_size)
    };
    let plural = if t.epochs == 1 { "" } else { "s" };
    parts.push(format!("{batch}, {} epoch{plural}", t.epochs));
    parts.join(" · ")
}

/// The figures a reader looks for first, those the run has: status, epochs, the final
/// and best losses and scores (with the epoch of the best), time and speed.
pub fn headline(run: &RunSummary) -> Vec<(String, String)> {
    let mut rows = vec![("status".to_string(), run.status.clone())];
    let total = run.config().map(|c| c.train.epochs);
    let epochs = match total {
        Some(total) if total != run.epochs => format!("{} of {total}", run.epochs),
        _ => run.epochs.to_string(),
    };
    rows.push(("epochs".into(), epochs));
    for (name, value) in run.results() {
        let Some(v) = value else { continue };
        if name == "epochs" || name == "best_train_loss" {
            continue;
        }
        let text = match name.strip_prefix("best_") {
            Some(col) => match run.column(col).iter().find(|p| p.1 == v) {
                Some((epoch, _)) => format!("{} (epoch {epoch})", fmt(v)),
                None => fmt(v),
            },
            None if name == "wall_s" => format!("{}s", fmt(v)),
            None => fmt(v),
        };
        rows.push((name.to_string(), text));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(240540), "240,540");
        assert_eq!(thousands(9626624), "9,626,624");
    }

    #[test]
    fn the_model_line_names_family_optimizer_and_epochs() {
        let cfg = ExperimentConfig::default();
        let line = model_line(&cfg, Some(240540));
        assert!(line.contains("240,540 parameters"), "{line}");
        assert!(line.contains(&name_of(&cfg.train.optimizer)), "{line}");
        assert!(line.contains(&format!("{} epochs", cfg.train.epochs)), "{line}");
        assert!(line.contains("learning rate"), "{line}");
    }
}
