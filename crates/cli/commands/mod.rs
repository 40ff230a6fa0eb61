//! One module per `s2s` subcommand.

pub mod average;
pub mod bench;
pub mod compare;
pub mod config;
pub mod eval;
pub mod list;
pub mod report;
pub mod resume;
pub mod run;
pub mod sweep;
pub mod tokenizer;
pub mod translate;
