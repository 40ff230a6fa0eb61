//! The training loop. It knows nothing about translation: it drives a [`TrainStep`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::checkpoint::{CheckpointKind, Checkpointer};
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::metric::MetricSpec;
use crate::observer::{EpochRecord, Observer, StepRecord, Summary};
use crate::optimizer::Optimizer;
use crate::policy::after_validation;
use crate::schedule::learning_rate;
use crate::state::TrainerState;

/// What a model must offer to be trained.
pub trait TrainStep {
    type Batch;
    /// Whatever else the task needs to continue exactly (its random streams), saved with
    /// every checkpoint and handed back on resume.
    type State;
    /// The trainable variables, in a stable order.
    fn parameters(&self) -> Vec<(String, Var)>;
    /// The batches of epoch `epoch` (0-based), deterministic for a given run.
    fn epoch_batches(&mut self, epoch: usize) -> Result<Vec<Self::Batch>>;
    /// The weight of a batch in the epoch mean and throughput (its target tokens).
    fn batch_weight(&self, batch: &Self::Batch) -> usize;
    /// The scalar loss to minimise.
    fn loss(&mut self, batch: &Self::Batch) -> Result<Tensor>;
    /// The loss's value and the gradients of the parameters. By default [`Self::loss`],
    /// differentiated; a task may instead split the batch over threads and sum.
    fn loss_and_grads(&mut self, batch: &Self::Batch) -> Result<(f64, GradStore)> {
        let loss = self.loss(batch)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        Ok((value, loss.backward()?))
    }
    /// The metrics [`Self::validate`] reports, each with the direction it improves in.
    fn metrics(&self) -> Vec<MetricSpec>;
    /// Validation metrics, named as in [`Self::metrics`]; empty when there is nothing to
    /// validate on.
    fn validate(&mut self) -> Result<Vec<(String, f64)>>;
    /// The task's [`Self::State`] now, for a checkpoint.
    fn snapshot(&self) -> Self::State;
}

#[derive(Debug)]
pub struct Trainer {
    cfg: TrainConfig,
    state: TrainerState,
    optimizer: Option<(HashMap<String, Tensor>, u64)>,
    stop: Option<Arc<AtomicBool>>,
    threads: usize,
}

impl Trainer {
    pub fn new(cfg: TrainConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg, state: TrainerState::default(), optimizer: None, stop: None, threads: 1 })
    }

    /// Threads the optimizer's update is split over (by parameter).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Continue from a checkpoint's trainer state and optimizer moments.
    pub fn resume_from(mut self, state: TrainerState, optimizer: HashMap<String, Tensor>, steps: u64) -> Self {
        self.state = state;
        self.optimizer = Some((optimizer, steps));
        self
    }

    /// When `flag` becomes true, training stops after the current step with a checkpoint.
    pub fn stop_when(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    /// Trains until `epochs` or early stopping.
    pub fn fit<T: TrainStep>(
        &mut self,
        task: &mut T,
        observer: &mut dyn Observer,
        checkpointer: &mut dyn Checkpointer<T::State>,
    ) -> Result<Summary> {
        let cfg = &self.cfg;
        let mut opt = Optimizer::new(cfg, task.parameters());
        opt.set_threads(self.threads);
        if self.state.steps == 0 {
            self.state.last_lr = cfg.learning_rate;
        }
        if let Some((tensors, steps)) = self.optimizer.take() {
            opt.load_state(&tensors, steps)?;
        }
        let start = Instant::now();
        let monitored = cfg.monitored(&task.metrics())?;
        let mut save = |kind, state: &TrainerState, opt: &Optimizer, task: &T, observer: &mut dyn Observer| {
            checkpointer.save(kind, state, opt, &task.snapshot())?;
            observer.on_checkpoint(kind, state)
        };
        observer.on_start(self.state.epochs_done, cfg.epochs);
        let mut interrupted = false;
        if self.state.steps == 0 {
            // A starting point to resume from, whatever happens before the first step ends.
            save(CheckpointKind::Last, &self.state, &opt, task, observer)?;
        }
        while self.state.epochs_done < cfg.epochs && !self.state.stopped_early && !interrupted {
            let epoch = self.state.epochs_done;
            let batches = task.epoch_batches(epoch)?;
            observer.on_epoch_start(epoch, batches.len());
            let epoch_start = Instant::now();
            let skip = self.state.batch_in_epoch;
            let mut trained_weight = 0usize;
            for (i, batch) in batches.iter().enumerate().skip(skip) {
                let lr = learning_rate(cfg, self.state.steps, epoch, self.state.progress.plateau_reductions);
                let (value, grads) = task.loss_and_grads(batch)?;
                if !value.is_finite() {
                    return Err(TrainError::Diverged { epoch: epoch + 1, step: self.state.steps, loss: value });
                }
                self.state.last_grad_norm = opt.step(&grads, lr, cfg.clip_grad_norm)?;
                self.state.last_lr = lr;
                let w = task.batch_weight(batch);
                self.state.epoch_loss_sum += value * w as f64;
                self.state.epoch_weight_sum += w;
                trained_weight += w;
                self.state.steps += 1;
                self.state.batch_in_epoch = i + 1;
                observer.on_step(&StepRecord {
                    epoch,
                    batch: i,
                    step: self.state.steps,
                    loss: value,
                    learning_rate: lr,
                    grad_norm: self.state.last_grad_norm,
                });
                let stop = self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst));
                let due = cfg.checkpoint_every_steps > 0 && self.state.steps.is_multiple_of(cfg.checkpoint_every_steps);
                if i + 1 < batches.len() && (stop || due) {
                    save(CheckpointKind::Last, &self.state, &opt, task, observer)?;
                }
                if stop {
                    interrupted = true;
                    break;
                }
            }
            if interrupted {
                break;
            }
            let epoch_s = epoch_start.elapsed().as_secs_f64();
            let train_loss = self.state.epoch_loss_sum / self.state.epoch_weight_sum.max(1) as f64;
            let last_epoch = epoch + 1 == cfg.epochs;
            let validate = cfg.validate_every > 0 && ((epoch + 1).is_multiple_of(cfg.validate_every) || last_epoch);
            let metrics = if validate { task.validate()? } else { Vec::new() };
            let mut improved = false;
            if let Some((_, v)) = metrics.iter().find(|(k, _)| k == monitored.name) {
                let d = after_validation(
                    &mut self.state.progress,
                    *v,
                    epoch + 1,
                    monitored.direction,
                    cfg.early_stopping_patience,
                    if cfg.lr_schedule == crate::config::Schedule::Plateau { cfg.lr_patience } else { 0 },
                );
                improved = d.improved;
                self.state.stopped_early = d.stop;
            }
            self.state.epochs_done = epoch + 1;
            self.state.batch_in_epoch = 0;
            self.state.epoch_loss_sum = 0.0;
            self.state.epoch_weight_sum = 0;
            self.state.last_train_loss = Some(train_loss);
            let record = EpochRecord {
                epoch: epoch + 1,
                step: self.state.steps,
                train_loss,
                learning_rate: self.state.last_lr,
                grad_norm: self.state.last_grad_norm,
                elapsed_s: start.elapsed().as_secs_f64(),
                epoch_s,
                tokens_per_s: trained_weight as f64 / epoch_s.max(1e-9),
                metrics,
                improved,
            };
            observer.on_epoch(&record)?;
            if improved {
                save(CheckpointKind::Best, &self.state, &opt, task, observer)?;
            }
            let periodic = cfg.checkpoint_every > 0 && (epoch + 1).is_multiple_of(cfg.checkpoint_every);
            let stop = self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst));
            if periodic || last_epoch || self.state.stopped_early || stop {
                save(CheckpointKind::Last, &self.state, &opt, task, observer)?;
            }
            interrupted = stop && !last_epoch;
        }
        let summary = Summary {
            epochs_done: self.state.epochs_done,
            steps: self.state.steps,
            final_train_loss: self.state.last_train_loss.unwrap_or(f64::NAN),
            best: self.state.progress.best,
            wall_s: start.elapsed().as_secs_f64(),
            stopped_early: self.state.stopped_early,
            interrupted,
        };
        observer.on_end(&summary);
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::NoCheckpoints;
    use crate::observer::Recorder;
    use candle_core::Device;

    /// Linear regression y = 2x + 1 as a TrainStep, with a validation set.
    struct Regression {
        w: Var,
        b: Var,
        xs: Vec<f32>,
        /// Validation values to report instead of the real loss, epoch by epoch.
        scripted: Vec<f64>,
        validations: usize,
    }

    impl TrainStep for Regression {
        type Batch = Vec<f32>;
        type State = ();
        fn metrics(&self) -> Vec<MetricSpec> {
            vec![MetricSpec { name: "valid_loss", direction: crate::Direction::Lower }]
        }
        fn snapshot(&self) {}
        fn parameters(&self) -> Vec<(String, Var)> {
            vec![("b".into(), self.b.clone()), ("w".into(), self.w.clone())]
        }
        fn epoch_batches(&mut self, _epoch: usize) -> Result<Vec<Vec<f32>>> {
            Ok(self.xs.chunks(4).map(<[f32]>::to_vec).collect())
        }
        fn batch_weight(&self, batch: &Vec<f32>) -> usize {
            batch.len()
        }
        fn loss(&mut self, batch: &Vec<f32>) -> Result<Tensor> {
            let x = Tensor::new(batch.as_slice(), &Device::Cpu)?;
            let y = ((&x * 2.0)? + 1.0)?;
            let pred = x.broadcast_mul(self.w.as_tensor())?.broadcast_add(self.b.as_tensor())?;
            Ok((pred - y)?.sqr()?.mean_all()?)
        }
        fn validate(&mut self) -> Result<Vec<(String, f64)>> {
            self.validations += 1;
            if let Some(v) = self.scripted.get(self.validations - 1) {
                return Ok(vec![("valid_loss".into(), *v)]);
            }
            let l = self.loss(&vec![0.5, 1.5])?.to_scalar::<f32>()?;
            Ok(vec![("valid_loss".into(), f64::from(l))])
        }
    }

    fn task() -> Regression {
        Regression {
            w: Var::new(&[0.0f32], &Device::Cpu).expect("w"),
            b: Var::new(&[0.0f32], &Device::Cpu).expect("b"),
            xs: (0..16).map(|i| i as f32 / 8.0).collect(),
            scripted: Vec::new(),
            validations: 0,
        }
    }

    #[test]
    fn fit_learns_and_reports() {
        let cfg = TrainConfig { epochs: 60, learning_rate: 0.05, ..Default::default() };
        let mut t = task();
        let mut rec = Recorder::default();
        let summary = Trainer::new(cfg).expect("cfg").fit(&mut t, &mut rec, &mut NoCheckpoints).expect("fit");
        assert_eq!(rec.epochs.len(), 60);
        assert_eq!(rec.steps, 240);
        assert!(summary.final_train_loss < 0.01, "{summary:?}");
        assert!(rec.epochs[0].train_loss > summary.final_train_loss);
        assert_eq!(rec.epochs[0].metrics[0].0, "valid_loss");
    }

    #[test]
    fn early_stopping_stops_after_patience() {
        let cfg = TrainConfig { epochs: 50, learning_rate: 0.05, early_stopping_patience: 3, ..Default::default() };
        let mut t = Regression { scripted: vec![3.0, 2.0, 2.5, 2.6, 2.7, 1.0], ..task() };
        let mut rec = Recorder::default();
        let s = Trainer::new(cfg).expect("cfg").fit(&mut t, &mut rec, &mut NoCheckpoints).expect("fit");
        assert!(s.stopped_early, "{s:?}");
        assert_eq!(s.epochs_done, 5);
        assert_eq!(s.best, Some((2.0, 2)));
        assert_eq!(rec.epochs.iter().map(|r| r.improved).collect::<Vec<_>>(), [true, true, false, false, false]);
    }

    /// Keeps the last checkpoint in memory: trainer state, optimizer moments, parameters.
    /// Trainer state, optimizer moments, optimizer step count, parameter values.
    type Saved = (TrainerState, HashMap<String, Tensor>, u64, Vec<f32>);

    #[derive(Default)]
    struct Memory {
        saved: Vec<Saved>,
    }

    impl Checkpointer<()> for Memory {
        fn save(&mut self, _: CheckpointKind, s: &TrainerState, o: &Optimizer, _: &()) -> Result<()> {
            self.saved.push((s.clone(), o.state_tensors()?, o.steps, vec![]));
            Ok(())
        }
    }

    fn params(t: &Regression) -> Vec<f32> {
        [&t.w, &t.b].iter().flat_map(|v| v.as_tensor().to_vec1::<f32>().expect("vec")).collect()
    }

    #[test]
    fn resuming_mid_epoch_is_bit_identical() {
        let cfg = TrainConfig {
            epochs: 4,
            learning_rate: 0.05,
            checkpoint_every_steps: 3,
            validate_every: 0,
            ..Default::default()
        };
        let mut straight = task();
        let mut rec_a = Recorder::default();
        Trainer::new(cfg.clone()).expect("cfg").fit(&mut straight, &mut rec_a, &mut NoCheckpoints).expect("fit");

        // Stop after step 7 (mid-epoch 2 of 4 batches each) via the stop flag.
        let mut first = task();
        let flag = Arc::new(AtomicBool::new(false));
        let mut mem = Memory::default();
        struct StopAt(Arc<AtomicBool>, usize, Recorder);
        impl Observer for StopAt {
            fn on_step(&mut self, s: &StepRecord) {
                if s.epoch * 4 + s.batch + 1 == self.1 {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            fn on_epoch(&mut self, r: &EpochRecord) -> Result<()> {
                self.2.on_epoch(r)
            }
        }
        let mut stopper = StopAt(flag.clone(), 7, Recorder::default());
        let s = Trainer::new(cfg.clone())
            .expect("cfg")
            .stop_when(flag)
            .fit(&mut first, &mut stopper, &mut mem)
            .expect("fit");
        assert!(s.interrupted);
        let (state, moments, steps, _) = mem.saved.last().cloned().expect("a checkpoint");
        assert_eq!((state.epochs_done, state.batch_in_epoch, state.steps), (1, 3, 7));

        let mut resumed = task();
        resumed.w.set(first.w.as_tensor()).expect("w");
        resumed.b.set(first.b.as_tensor()).expect("b");
        let mut rec_b = stopper.2;
        Trainer::new(cfg)
            .expect("cfg")
            .resume_from(state, moments, steps)
            .fit(&mut resumed, &mut rec_b, &mut NoCheckpoints)
            .expect("fit");
        assert_eq!(
            params(&straight).iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            params(&resumed).iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        let losses = |r: &Recorder| r.epochs.iter().map(|e| e.train_loss.to_bits()).collect::<Vec<_>>();
        assert_eq!(losses(&rec_a), losses(&rec_b));
    }

    #[test]
    fn bad_config_is_rejected() {
        let err = Trainer::new(TrainConfig { learning_rate: f64::NAN, ..Default::default() }).expect_err("nan");
        assert!(err.to_string().contains("train.learning_rate"));
        let err = Trainer::new(TrainConfig { epochs: 0, ..Default::default() }).expect_err("zero");
        assert!(err.to_string().contains("train.epochs"));
    }
}
