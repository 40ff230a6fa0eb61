//! One module per `s2s` subcommand.

pub mod config;
pub mod eval;
pub mod resume;
pub mod run;
pub mod translate;
