//! Renders the report at each end-of-epoch checkpoint. The session's end renders it once
//! more, after run.json has its final figures, so the last checkpoint is left to that.

use s2s_trainer::{CheckpointKind, Observer, TrainError, TrainerState};

use super::Renderer;

#[derive(Debug)]
pub struct ReportObserver<'a> {
    pub renderer: Renderer<'a>,
}

impl Observer for ReportObserver<'_> {
    fn on_checkpoint(&mut self, kind: CheckpointKind, state: &TrainerState) -> s2s_trainer::Result<()> {
        let end_of_epoch = state.batch_in_epoch == 0 && state.steps > 0;
        let last = state.epochs_done >= self.renderer.cfg.train.epochs || state.stopped_early;
        if kind == CheckpointKind::Last && end_of_epoch && !last {
            self.renderer.render(state.epochs_done).map_err(TrainError::task)?;
        }
        Ok(())
    }
}
