//! Training sessions on the terminal: progress as a bar when stdout is a terminal, else a line every
//! twentieth of the run (and at every validation).

use s2s_run::report::number::fmt;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use s2s_trainer::{EpochRecord, Observer, Summary};

#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    every: usize,
}

impl Progress {
    pub fn new() -> Self {
        Self { bar: None, total: 0, every: 1 }
    }
}

impl Observer for Progress {
    fn on_start(&mut self, first_epoch: usize, total_epochs: usize) {
        self.total = total_epochs;
        self.every = (total_epochs / 20).max(1);
        self.bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::new(total_epochs as u64);
            let style =
                ProgressStyle::with_template("{bar:30} epoch {pos}/{len}  {msg}  [{elapsed_precise} < {eta_precise}]")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(first_epoch as u64);
            bar
        });
    }

    fn on_epoch(&mut self, r: &EpochRecord) -> s2s_trainer::Result<()> {
        let valid: String = r
            .metrics
            .iter()
            .filter(|(k, _)| k == "valid_loss" || k == "valid_bleu")
            .map(|(k, v)| format!("  {k} {}", fmt(*v)))
            .collect();
        let msg = format!("loss {}{valid}", fmt(r.train_loss));
        match &self.bar {
            Some(bar) => {
                bar.set_position(r.epoch as u64);
                bar.set_message(msg);
            }
            None => {
                if r.epoch.is_multiple_of(self.every) || r.epoch == self.total || r.epoch == 1 || !r.metrics.is_empty()
                {
                    crate::output::say(&format!(
                        "epoch {:>4}/{}  train_loss {}{valid}  lr {:.3e}  {:.1}s",
                        r.epoch,
                        self.total,
                        fmt(r.train_loss),
                        r.learning_rate,
                        r.elapsed_s
                    ));
                }
            }
        }
        Ok(())
    }

    fn on_end(&mut self, _summary: &Summary) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Runs a training session on the terminal: the signal handler's stop flag, a progress
/// bar, settings on stdout, warnings on stderr, and the closing lines.
pub fn on_terminal(
    session: impl FnOnce(s2s_run::SessionHooks) -> s2s_run::Result<s2s_run::Outcome>,
) -> anyhow::Result<s2s_run::Outcome> {
    let outcome = with_hooks(session)?;
    print_outcome(&outcome);
    Ok(outcome)
}

/// Gives `session` the terminal's hooks (as [`on_terminal`], without the closing lines).
pub fn with_hooks<T>(session: impl FnOnce(s2s_run::SessionHooks) -> s2s_run::Result<T>) -> s2s_run::Result<T> {
    let mut progress = Progress::new();
    let hooks = s2s_run::SessionHooks {
        stop: crate::signal::stop_flag(),
        progress: &mut progress,
        say: &mut crate::output::say,
        warn: &mut |w| eprintln!("warning: {w}"),
        views: &s2s_tensorboard::TensorBoard,
    };
    session(hooks)
}

/// The closing lines of a training session (dropped after a closed pipe, as its other
/// lines are).
pub fn print_outcome(outcome: &s2s_run::Outcome) {
    match outcome {
        s2s_run::Outcome::Completed(done) => {
            for line in &done.lines {
                crate::output::say(line);
            }
            for t in &done.translations {
                crate::output::say(&format!("  {}  →  {}", t.source, t.text));
            }
        }
        s2s_run::Outcome::Interrupted(dir) => {
            eprintln!("interrupted: checkpoint written; continue with `s2s resume {}`", dir.display());
        }
    }
}
