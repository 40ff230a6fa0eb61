//! Views of a run kept outside its own files, such as TensorBoard's event files: the
//! caller of a session says which ([`RunViews`], in [`crate::SessionHooks`]), so that
//! this crate compiles none of them. A view is told of every training event, as the
//! report is; a problem writing it is told as a warning, and the run's own files are
//! still finished.

use s2s_trainer::Observer;

use crate::error::{Result, RunError};
use crate::report::Renderer;

/// One view, watching a session.
pub trait RunView: Observer + std::fmt::Debug {
    /// What it writes, for a warning ("TensorBoard events").
    fn name(&self) -> &'static str;
    /// An error it met where it could not report it (a step, the end).
    fn error(&mut self) -> Option<RunError>;
}

/// Starts the views of one session, once the model and the run folder are ready.
pub trait RunViews: std::fmt::Debug {
    /// The views for this session: a new run (`resumed_at` `None`) or one resumed from the
    /// checkpoint at step `resumed_at`.
    fn start<'a>(&self, renderer: Renderer<'a>, resumed_at: Option<usize>) -> Result<Vec<Box<dyn RunView + 'a>>>;
}

/// No view beside the run's own files.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoViews;

impl RunViews for NoViews {
    fn start<'a>(&self, _: Renderer<'a>, _: Option<usize>) -> Result<Vec<Box<dyn RunView + 'a>>> {
        Ok(Vec::new())
    }
}
