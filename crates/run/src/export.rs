//! `s2s export`: one checkpoint of a run written for another inference engine, with the
//! vocabularies and the tokenizer files that turn raw text into its pieces and back.
//!
//! CTranslate2: the model family maps its parameters to CTranslate2's variables
//! ([`s2s_model::Family::ctranslate2`]); the files are written by the `ctranslate2`
//! package's own spec API, through `scripts/export_ctranslate2.py` (compiled into the
//! binary and run with `--python`), so that CTranslate2's format, its checks of every
//! variable and vocabulary size, and its aliasing of tied weights stay the package's.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use candle_core::Tensor;
use s2s_data::tokenizer::TokenizerKind;
use serde_json::json;

use crate::checkpoint::Which;
use crate::error::{io, Result, RunError};
use crate::opened::OpenedRun;
use s2s_model::Ct2Model;

/// The script that writes the CTranslate2 files.
const CTRANSLATE2_SCRIPT: &str = include_str!("../../../scripts/export_ctranslate2.py");

/// The file beside the model that says where it came from and how text becomes pieces.
pub const MANIFEST: &str = "s2s-export.json";

/// The BPE tokenizers' file names in an export (Hugging Face `tokenizer.json` format).
pub const TOKENIZER_FILES: [&str; 2] = ["source_tokenizer.json", "target_tokenizer.json"];

/// Where an export goes and what it reads.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub which: Which,
    /// An absent or empty folder.
    pub out: PathBuf,
    /// The Python that has the `ctranslate2` package.
    pub python: PathBuf,
}

/// What [`ctranslate2`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The checkpoint exported (`best`, `step-00000047`, ...).
    pub checkpoint: String,
    /// Variables handed to CTranslate2's spec.
    pub variables: usize,
    /// Every file in the output folder, sorted.
    pub files: Vec<PathBuf>,
}

/// Writes checkpoint `opts.which` of the run at `dir` as a CTranslate2 model in
/// `opts.out`: `model.bin`, `config.json`, the vocabularies, the tokenizer files (BPE runs)
/// and [`MANIFEST`]. Nothing is overwritten: a non-empty `out` is refused.
pub fn ctranslate2(dir: &Path, opts: &ExportOptions) -> Result<Exported> {
    let out = &opts.out;
    if out.exists() && fs::read_dir(out).map_err(io(out))?.next().is_some() {
        return Err(RunError::Refused(format!(
            "{} is not empty; export into a new folder (nothing is overwritten)",
            out.display()
        )));
    }
    let run = OpenedRun::open(dir, &opts.which)?;
    let family = run.cfg.model.family.as_family();
    let model = family.ctranslate2(run.model.params(), &run.cfg.model.decoding, run.model.dims())?;

    let created = !out.exists();
    fs::create_dir_all(out).map_err(io(out))?;
    let written = write_all(dir, &run, &model, opts);
    if written.is_err() && created {
        // A failed export leaves no folder behind (one that was there stays, empty).
        fs::remove_dir_all(out).map_err(io(out))?;
    }
    written?;
    let mut files: Vec<PathBuf> =
        fs::read_dir(out).map_err(io(out))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    Ok(Exported { checkpoint: run.checkpoint.name(), variables: model.variables.len(), files })
}

/// Writes the model (through the script), the tokenizer files and the manifest into
/// `opts.out`, which exists.
fn write_all(dir: &Path, run: &OpenedRun, model: &Ct2Model, opts: &ExportOptions) -> Result<()> {
    let out = &opts.out;
    let staging = tempfile_dir(out)?;
    let staged = (|| {
        let tensors: HashMap<String, Tensor> =
            model.variables.iter().map(|(p, t)| Ok((p.clone(), t.contiguous()?))).collect::<Result<_>>()?;
        candle_core::safetensors::save(&tensors, staging.join("variables.safetensors"))?;
        // The special tokens as this run's vocabulary spells them (`SOS`, or `<s>` in a
        // BPE vocabulary), at the ids the model uses.
        let target = run.target.vocab().tokens();
        let special = |id: u32| target.get(id as usize).cloned().unwrap_or_default();
        let meta = json!({
            "options": model.options,
            "tokens": { "bos": special(s2s_data::SOS), "eos": special(s2s_data::EOS), "unk": special(s2s_data::UNK) },
            "source_vocabulary": run.source.vocab().tokens(),
            "target_vocabulary": target,
        });
        write_json(&staging.join("export.json"), &meta)?;
        run_script(&opts.python, CTRANSLATE2_SCRIPT, &[&staging, out])
    })();
    let cleaned = fs::remove_dir_all(&staging).map_err(io(&staging));
    staged?;
    cleaned?;
    let kind = run.cfg.data.tokenizer;
    if kind == TokenizerKind::Bpe {
        for (from, to) in run.dir.tokenizer_files(kind).iter().zip(TOKENIZER_FILES) {
            fs::copy(from, out.join(to)).map_err(io(from))?;
        }
    }
    let manifest = json!({
        "engine": "ctranslate2",
        "run": dir.display().to_string(),
        "checkpoint": run.checkpoint.name(),
        "model": run.cfg.model.family.as_family().describe(),
        "tokenizer": match kind {
            TokenizerKind::Bpe => json!({
                "kind": "bpe",
                "source": TOKENIZER_FILES[0],
                "target": TOKENIZER_FILES[1],
                "note": "Hugging Face tokenizer.json files: encode(text, add_special_tokens=False).tokens \
                         are the source pieces; decode(ids) of the output pieces is the text",
            }),
            TokenizerKind::Word => json!({
                "kind": "word",
                "normalization": run.cfg.data.normalization(),
                "note": "the pieces are the words of the text after s2s's normalization (these steps), \
                         split at spaces; the output's words joined by spaces are the text",
            }),
        },
        "decoding": {
            "beam_size": run.cfg.model.decoding.beam_size,
            "length_penalty": run.cfg.model.decoding.length_penalty,
            "max_decoding_length": run.model.base().max_steps(),
        },
    });
    write_json(&out.join(MANIFEST), &manifest)?;
    Ok(())
}

/// A fresh folder beside `out` for the files handed to the script.
fn tempfile_dir(out: &Path) -> Result<PathBuf> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io(parent))?;
    let name =
        format!(".{}.export-{}", out.file_name().map_or("out".into(), |n| n.to_string_lossy()), std::process::id());
    let dir = parent.join(name);
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    Ok(dir)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| RunError::Refused(e.to_string()))?;
    fs::write(path, text + "\n").map_err(io(path))
}

/// Runs `script` (Python source, fed on standard input) with `python` and `args`; its
/// last line of standard error is the error when it fails.
fn run_script(python: &Path, script: &str, args: &[&Path]) -> Result<()> {
    use std::io::Write;
    let mut child = Command::new(python)
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            RunError::Refused(format!(
                "cannot run {} ({e}): exporting to CTranslate2 needs Python with the ctranslate2 package \
                 (pip install ctranslate2); name it with --python",
                python.display()
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(io(python))?;
    }
    let output = child.wait_with_output().map_err(io(python))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(RunError::Refused(format!("{} {}: {last}", python.display(), output.status)));
    }
    Ok(())
}
