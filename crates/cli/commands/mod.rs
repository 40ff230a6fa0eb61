//! One module per `s2s` subcommand, and [`execute`], which runs the one asked for.

pub mod average;
pub mod bench;
pub mod compare;
pub mod config;
pub mod eval;
pub mod export;
pub mod list;
pub mod report;
pub mod resume;
pub mod run;
pub mod serve;
pub mod sweep;
pub mod tokenizer;
pub mod translate;

use std::process::ExitCode;

use crate::args::{Command, SweepAction, TokenizerAction};

/// Runs `command`; the exit code of a command that ran (130 for a training session
/// stopped by a signal).
pub fn execute(command: Command) -> anyhow::Result<ExitCode> {
    let outcome = |r: anyhow::Result<s2s_run::Outcome>| {
        r.map(|o| match o {
            s2s_run::Outcome::Completed(_) => ExitCode::SUCCESS,
            s2s_run::Outcome::Interrupted(_) => ExitCode::from(130),
        })
    };
    // A run may be named by its folder, `latest`, or a unique prefix of its name.
    let find = |run: &std::path::Path| s2s_run::summary::resolve_run(run, s2s_run::summary::DEFAULT_RUNS_DIR.as_ref());
    match command {
        Command::Run { config, sets } => outcome(run::execute(&config, &sets)),
        Command::Resume { run, epochs, sets } => outcome(resume::execute(&find(&run)?, epochs, &sets)),
        Command::Eval { run, split, data, checkpoint, beam, length_penalty, json } => {
            let data = data.map_or(s2s_run::eval::EvalData::Split(split), s2s_run::eval::EvalData::File);
            let decoding = s2s_run::opened::DecodingChoice { beam_size: beam, length_penalty };
            eval::execute(&find(&run)?, &data, &checkpoint, &decoding, json).map(|_| ExitCode::SUCCESS)
        }
        Command::Export { run, to, out, checkpoint, python } => {
            export::execute(&find(&run)?, to, &out, &checkpoint, &python).map(|()| ExitCode::SUCCESS)
        }
        Command::Average { run, last } => average::execute(&find(&run)?, last).map(|()| ExitCode::SUCCESS),
        Command::Serve { dirs, host, port, cache_mib } => {
            serve::execute(&dirs, &host, port, cache_mib).map(|()| ExitCode::SUCCESS)
        }
        Command::List { dir } => list::execute(&dir).map(|()| ExitCode::SUCCESS),
        Command::Compare { runs, all_keys, sort, json, csv, out, dir } => {
            compare::execute(&runs, &compare::Options { all_keys, sort, json, csv, out, dir })
                .map(|_| ExitCode::SUCCESS)
        }
        Command::Report { run } => report::execute(&find(&run)?).map(|()| ExitCode::SUCCESS),
        Command::Sweep { action: Some(action), .. } => match action {
            SweepAction::Status { dir, json } => sweep::status(&dir, json).map(|()| ExitCode::SUCCESS),
            SweepAction::Cancel { dir } => sweep::cancel(&dir).map(|()| ExitCode::SUCCESS),
            SweepAction::Resubmit { dir } => sweep::resubmit(&dir).map(|()| ExitCode::SUCCESS),
            SweepAction::Point { dir, index } => sweep::point(&dir, index),
        },
        Command::Sweep { action: None, config: None, .. } => {
            Err(anyhow::anyhow!("give a config with --grid, a sweep file, or status|cancel|resubmit DIR"))
        }
        Command::Sweep { action: None, config: Some(config), grids, sets, jobs, launcher, slurm, dry_run } => {
            let args = s2s_sweep::SweepArgs { grids, sets, launcher, jobs, slurm };
            sweep::execute(&config, &sweep::LaunchOptions { args, dry_run }).map(|()| ExitCode::SUCCESS)
        }
        Command::Bench(options) => bench::execute(&options).map(|()| ExitCode::SUCCESS),
        Command::Tokenizer { action: TokenizerAction::Train { config, sets, out } } => {
            tokenizer::train(&config, &sets, out.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::BenchData { config, sets } => bench::data(&config, &sets).map(|()| ExitCode::SUCCESS),
        Command::Config { config, sets } => config::execute(&config, &sets).map(|()| ExitCode::SUCCESS),
        Command::Translate { run, text, checkpoint, beam, n_best, heatmap, layer, head, batch_size } => {
            translate::execute(
                &find(&run)?,
                &text,
                &translate::Options { checkpoint, beam, n_best, heatmap, layer, head, batch_size },
            )
            .map(|()| ExitCode::SUCCESS)
        }
    }
}
