//! Sweeps: one run per point of a grid (crossed with named variants), launched here or as
//! one Slurm array job, and kept in a sweep folder that `s2s sweep status`, `cancel`,
//! `resubmit` and `compare` work on.
//!
//! - [`spec`]: what a sweep is (a sweep file or `--grid` flags), resolved;
//! - [`grid`]: grid axes, their combinations and the run label of each point;
//! - [`folder`]: the sweep folder and its files;
//! - [`launch`]: checking every point, writing the folder, training locally or submitting;
//! - [`slurm_config`] and [`slurm`]: `[sweep.slurm]`, the job script, Slurm's commands;
//! - [`point`]: one point's task (start or resume its run; requeue on a signal);
//! - [`status`]: where each point stands.

pub mod folder;
pub mod grid;
pub mod launch;
pub mod point;
pub mod slurm;
pub mod slurm_config;
pub mod spec;
pub mod status;

pub use folder::{Point, Points, SweepDir};
pub use grid::{label, parse_axis, points, Axis};
pub use spec::{Launcher, Sweep, SweepArgs};
