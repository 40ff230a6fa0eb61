//! The observer that writes a session's event file, and the [`RunViews`] that starts it.

use std::collections::HashMap;

use s2s_trainer::{CheckpointKind, EpochRecord, Observer, StepRecord, Summary, TrainError, TrainerState};

use s2s_run::error::{Result, RunError};
use s2s_run::report::artifacts::translate_report_sentences;
use s2s_run::report::Renderer;
use s2s_run::translator::HEADS_SUFFIX;
use s2s_run::view::{RunView, RunViews};

use crate::proto::{Event, SessionLog, SummaryValue, What, SESSION_START};
use crate::record::{now_secs, EventFile};
use crate::summary;

/// Hyperparameters shown when `report.hparams` is empty, beside `model.architecture` and
/// the keys the model family names ([`s2s_model::Family::logged_keys`]).
const DEFAULT_HPARAMS: [&str; 4] = ["train.optimizer", "train.learning_rate", "train.batch_size", "run.seed"];

#[derive(Debug)]
pub struct TensorBoardObserver<'a> {
    renderer: Renderer<'a>,
    file: EventFile,
    /// An error met in an event that cannot return one (a step), reported at the next that can.
    pending: Option<RunError>,
}

impl<'a> TensorBoardObserver<'a> {
    /// Starts this session's event file. A new run logs its config and hyperparameters at
    /// step 0; a resumed one (`resumed_at` = the checkpoint's step) purges what earlier
    /// sessions logged after that step.
    pub fn start(renderer: Renderer<'a>, resumed_at: Option<usize>) -> Result<Self> {
        let file = EventFile::create(&renderer.run.tensorboard())?;
        let mut tb = Self { renderer, file, pending: None };
        match resumed_at {
            Some(step) => {
                let log = SessionLog { status: SESSION_START, ..Default::default() };
                tb.write(step + 1, What::SessionLog(log))?;
            }
            None => {
                let cfg = tb.renderer.cfg;
                let config = cfg.to_toml()?;
                let indented: String = config.lines().map(|l| format!("    {l}\n")).collect();
                let hparams = summary::session_start(tb.hparams()?, now_secs());
                let layout = summary::layout(
                    "train and validation",
                    &[("loss", &["^train/loss$", "^valid/loss$"]), ("scores", &["^valid/bleu$", "^valid/chrf$"])],
                );
                tb.values(0, vec![summary::text("config", &indented), hparams, layout])?;
            }
        }
        tb.file.flush()?;
        Ok(tb)
    }

    /// The configured hyperparameter keys and their values.
    fn hparams(&self) -> Result<HashMap<String, prost_types::Value>> {
        let cfg = self.renderer.cfg;
        let table = toml::Value::Table(cfg.to_table()?);
        let keys: Vec<String> = if cfg.report.hparams.is_empty() {
            let family = cfg.model.family.as_family().logged_keys().iter().map(|k| format!("model.{k}"));
            std::iter::once("model.architecture".to_string())
                .chain(family)
                .chain(DEFAULT_HPARAMS.iter().map(|k| (*k).to_string()))
                .collect()
        } else {
            cfg.report.hparams.clone()
        };
        let mut out = HashMap::new();
        for key in keys {
            let found = key.split('.').try_fold(&table, |v, part| v.get(part));
            match found {
                Some(v) => out.insert(key.clone(), summary::hparam_value(v)),
                None if cfg.report.hparams.is_empty() => None,
                None => return Err(RunError::Refused(format!("report.hparams: {key:?} is not a config key"))),
            };
        }
        Ok(out)
    }

    fn write(&mut self, step: usize, what: What) -> Result<()> {
        self.file.write(&Event { wall_time: now_secs(), step: step as i64, what: Some(what) })
    }

    fn values(&mut self, step: usize, values: Vec<SummaryValue>) -> Result<()> {
        self.write(step, What::Summary(summary::summary(values)))
    }

    /// The report sentences' translations (one markdown table) and heatmaps at `step`.
    fn translations(&mut self, step: usize) -> Result<()> {
        let r = self.renderer;
        let mut table = String::from("| source | reference | translation |\n| --- | --- | --- |\n");
        let mut values = Vec::new();
        for s in translate_report_sentences(r.cfg, r.corpus, r.model) {
            let out = match &s.translation {
                Ok(t) => t.text.clone(),
                Err(e) => format!("(not translated: {e})"),
            };
            let cell = |t: &str| t.replace('|', "\\|");
            table.push_str(&format!("| {} | {} | {} |\n", cell(&s.text), cell(&s.reference), cell(&out)));
            // The main heatmap under attention/, a Transformer's layer × head grid under
            // attention_heads/. A heatmap that cannot be drawn is left out (and said so in
            // the table); it does not stop training.
            let drawn = s.heatmap_svgs(&r.cfg.report).and_then(|svgs| {
                let wanted = svgs.iter().filter(|(suffix, _)| suffix.is_empty() || *suffix == HEADS_SUFFIX);
                wanted
                    .map(|(suffix, svg)| {
                        let section = if suffix.is_empty() { "attention" } else { "attention_heads" };
                        Ok((section, crate::raster::svg_to_png(svg)?))
                    })
                    .collect::<Result<Vec<_>>>()
            });
            match drawn {
                Ok(images) => {
                    for (section, (png, w, h)) in images {
                        values.push(summary::image(&format!("{section}/{}", s.name), png, w, h));
                    }
                }
                Err(e) => table.push_str(&format!(
                    "| {} | (heatmap not drawn: {}) | |\n",
                    cell(&s.text),
                    cell(&e.to_string())
                )),
            }
        }
        values.insert(0, summary::text("translations", &table));
        self.values(step, values)
    }

    fn epoch(&mut self, r: &EpochRecord) -> Result<()> {
        let mut values = vec![
            summary::scalar("train/loss_epoch", r.train_loss),
            summary::scalar("train/tokens_per_s", r.tokens_per_s),
        ];
        for (name, v) in &r.metrics {
            let tag = name.strip_prefix("valid_").map_or(name.clone(), |m| format!("valid/{m}"));
            values.push(summary::scalar(&tag, *v));
        }
        self.values(r.step, values)?;
        if !r.metrics.is_empty() {
            self.translations(r.step)?;
        }
        self.file.flush()
    }

    /// The end of the session for the HPARAMS tab, whose metric columns are the run's
    /// scalars at their last step (no single-point `final/` or `best/` cards).
    fn end(&mut self, s: &Summary) -> Result<()> {
        if !s.interrupted {
            self.values(s.steps, vec![summary::session_end(now_secs())])?;
        }
        self.file.flush()
    }

    fn take_pending(&mut self) -> s2s_trainer::Result<()> {
        self.pending.take().map_or(Ok(()), |e| Err(TrainError::task(e)))
    }
}

impl Observer for TensorBoardObserver<'_> {
    fn on_step(&mut self, s: &StepRecord) {
        let values = vec![
            summary::scalar("train/loss", s.loss),
            summary::scalar("train/learning_rate", s.learning_rate),
            summary::scalar("train/grad_norm", s.grad_norm),
        ];
        // Handed to the OS at once: a checkpoint written right after this step must not
        // find the step's values still in our buffer if the process is then killed.
        if let Err(e) = self.values(s.step, values).and_then(|()| self.file.flush()) {
            self.pending.get_or_insert(e);
        }
    }

    fn on_epoch(&mut self, r: &EpochRecord) -> s2s_trainer::Result<()> {
        self.take_pending()?;
        self.epoch(r).map_err(TrainError::task)
    }

    fn on_checkpoint(&mut self, kind: CheckpointKind, state: &TrainerState) -> s2s_trainer::Result<()> {
        self.take_pending()?;
        let never_validates = self.renderer.cfg.train.validate_every == 0;
        if kind == CheckpointKind::Last && never_validates && state.batch_in_epoch == 0 && state.steps > 0 {
            self.translations(state.steps).map_err(TrainError::task)?;
        }
        // What is written before a checkpoint must survive a crash after it.
        self.file.flush().map_err(TrainError::task)
    }

    fn on_end(&mut self, summary: &Summary) {
        let result = self.end(summary);
        if let Err(e) = result {
            self.pending.get_or_insert(e);
        }
    }
}

impl RunView for TensorBoardObserver<'_> {
    fn name(&self) -> &'static str {
        "TensorBoard events"
    }

    fn error(&mut self) -> Option<RunError> {
        self.pending.take()
    }
}

/// Starts a session's TensorBoard event file when `report.tensorboard` is on.
#[derive(Debug, Clone, Copy, Default)]
pub struct TensorBoard;

impl RunViews for TensorBoard {
    fn start<'a>(&self, renderer: Renderer<'a>, resumed_at: Option<usize>) -> Result<Vec<Box<dyn RunView + 'a>>> {
        if !renderer.cfg.report.tensorboard {
            return Ok(Vec::new());
        }
        Ok(vec![Box::new(TensorBoardObserver::start(renderer, resumed_at)?)])
    }
}
