//! `s2s translate RUN [TEXT ...]`: translate with a trained run.

use crate::output::outln;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use s2s_run::{OpenedRun, Which};

#[derive(Debug, Clone)]
pub struct Options {
    pub checkpoint: String,
    /// `None`: the run's `model.beam_size`.
    pub beam: Option<usize>,
    pub n_best: usize,
    pub heatmap: Option<PathBuf>,
    /// The decoder layer and head whose cross-attention the heatmap shows (Transformer).
    pub layer: Option<usize>,
    pub head: Option<usize>,
    /// Sentences decoded together.
    pub batch_size: usize,
}

pub fn execute(dir: &Path, texts: &[String], opts: &Options) -> Result<()> {
    if opts.beam == Some(0) {
        bail!("--beam 0: the beam must be at least 1 (1 = greedy)");
    }
    if opts.n_best == 0 {
        bail!("--n-best 0: ask for at least 1 translation");
    }
    if let Some(beam) = opts.beam.filter(|&b| b < opts.n_best) {
        bail!(
            "--n-best {} is more than --beam {beam}: a beam of {beam} keeps {beam} hypotheses; give --beam {} or more",
            opts.n_best,
            opts.n_best
        );
    }
    if opts.batch_size == 0 {
        bail!("--batch-size 0: decode at least 1 sentence at a time");
    }
    let run = OpenedRun::open(dir, &Which::parse(&opts.checkpoint))?;
    for w in &run.checkpoint.skipped {
        eprintln!("warning: {w}");
    }
    if !texts.is_empty() {
        // Several sentences' heatmaps are numbered FILE-1.svg, FILE-2.svg, ...
        let many = texts.len() > 1;
        for (c, chunk) in texts.chunks(opts.batch_size).enumerate() {
            batch(&run, chunk, opts, many.then_some(c * opts.batch_size + 1))?;
        }
        return Ok(());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return interactive(&run, opts);
    }
    // Piped or redirected: batch_size lines at a time, each group decoded together. Each
    // line is a sentence of its own: its heatmap goes to FILE-<line>.svg.
    let mut first = 1;
    let mut lines = stdin.lock().lines();
    loop {
        let mut group = Vec::with_capacity(opts.batch_size);
        for line in lines.by_ref().take(opts.batch_size) {
            group.push(line.with_context(|| format!("standard input, line {}", first + group.len()))?);
        }
        if group.is_empty() {
            return Ok(());
        }
        batch(&run, &group, opts, Some(first))?;
        first += group.len();
    }
}

/// A terminal: a prompt, and each line translated as soon as it is typed; a line that
/// fails says why and the next is read.
fn interactive(run: &OpenedRun, opts: &Options) -> Result<()> {
    let stdin = std::io::stdin();
    for number in 1.. {
        print!("> ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).with_context(|| format!("standard input, line {number}"))? == 0 {
            break;
        }
        if let Err(e) = batch(run, &[line], opts, Some(number)) {
            eprintln!("error: {e:#}");
        }
    }
    Ok(())
}

/// `path` for sentence `number` of several: `attn.svg` → `attn-3.svg`.
fn numbered(path: &Path, number: Option<usize>) -> PathBuf {
    let Some(n) = number else { return path.to_path_buf() };
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

/// Draws `t`'s attention as `--heatmap` asks: on the terminal (`-`), or as SVG files.
fn draw(run: &OpenedRun, t: &s2s_run::translator::Translation, opts: &Options, path: &Path) -> Result<()> {
    // A Transformer's maps come from its forced pass, with every layer and head.
    let first = t.clone().with_heads(run.model.as_ref())?;
    let shown = first.select_head(opts.layer, opts.head).map_err(anyhow::Error::msg)?;
    if path == Path::new("-") {
        let g = shown.grid();
        outln!("{} → {}", shown.source.trim(), shown.text)?;
        if let Some(what) = &shown.shows {
            outln!("{what}")?;
        }
        outln!("{}", s2s_report::terminal_heatmap(&g.source, &g.output, &g.weights))?;
        return Ok(());
    }
    // The main view at PATH; with report.attention_view = "both", the merged-word view
    // beside it as PATH's stem + ".words.svg"; a Transformer's layer × head grid as
    // ".heads.svg".
    let mut svgs = shown.heatmap_svgs(&run.cfg.report)?;
    if let Some(grid) = first.heads_svg(&run.cfg.report)? {
        svgs.push((s2s_run::translator::HEADS_SUFFIX, grid));
    }
    for (suffix, svg) in svgs {
        let file =
            if suffix.is_empty() { path.to_path_buf() } else { path.with_extension(format!("{}.svg", &suffix[1..])) };
        std::fs::write(&file, svg).with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}

/// Translates `texts` as one batch and prints each (its warnings, its translation or n-best
/// list, its heatmap) in order; `first` is the first one's place among several (for
/// heatmap files).
fn batch(run: &OpenedRun, texts: &[String], opts: &Options, first: Option<usize>) -> Result<()> {
    // Nothing in, nothing out: an empty line gets an empty line (the model would make a
    // sentence up).
    let sentences: Vec<String> = texts.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    // Without --beam, the run's beam, widened to --n-best when that asks for more.
    let beam = opts.beam.unwrap_or(run.cfg.model.decoding.beam_size.max(opts.n_best));
    let mut decoded = run.translate_n_best_all(&sentences, beam, opts.n_best)?.into_iter();
    for (i, text) in texts.iter().enumerate() {
        if text.trim().is_empty() {
            outln!()?;
            continue;
        }
        let hyps = decoded.next().unwrap_or_default();
        print_one(run, &hyps, opts, first.map(|f| f + i))?;
    }
    Ok(())
}

/// One sentence's hypotheses; `number` is its place among several (for heatmap files).
fn print_one(
    run: &OpenedRun,
    hyps: &[s2s_run::translator::Translation],
    opts: &Options,
    number: Option<usize>,
) -> Result<()> {
    if let Some(first) = hyps.first() {
        if !first.unknown.is_empty() {
            eprintln!("warning: unknown word(s) or character(s) {} translated as UNK", first.unknown.join(", "));
        }
        if !first.dropped.is_empty() {
            eprintln!(
                "warning: character(s) {} dropped by the run's normalization (the model never saw them)",
                first.dropped.join(" ")
            );
        }
    }
    if opts.n_best <= 1 {
        outln!("{}", hyps.first().map(|h| h.text.clone()).unwrap_or_default())?;
    } else {
        for h in hyps {
            outln!("{:.4}\t{}", h.log_prob, h.text)?;
        }
    }
    if let (Some(path), Some(best)) = (&opts.heatmap, hyps.first()) {
        let path = if path == Path::new("-") { path.clone() } else { numbered(path, number) };
        draw(run, best, opts, &path)?;
    }
    Ok(())
}
