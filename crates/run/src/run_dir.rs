//! A run folder, `experiments/<name>-<UTC timestamp>/`. [`RunDir`] alone knows its
//! layout; everything else asks it for paths:
//!
//! | path | what |
//! | --- | --- |
//! | `config.toml` | the resolved config |
//! | `run.json` | status, times, sessions, final metrics ([`crate::RunInfo`]) |
//! | `metrics.csv` | one row per epoch |
//! | `checkpoints/step-<N>/`, `checkpoints/best/` | weights, optimizer, state ([`crate::checkpoint`]) |
//! | `checkpoints/{src,tgt}_vocab.json` | the word vocabularies (`data.tokenizer = "word"`) |
//! | `tokenizer/{source,target}.json` | the BPE tokenizers (`tokenizer.json` format) |
//! | `loss.svg`, `scores.svg`, `attention/<sentence>.svg`, `attention/epoch-<N>/` | charts |
//! | `translations.txt`, `report.html`, `eval-<split>.json` | what people read |
//! | `events.out.tfevents.*` | TensorBoard's event files, one per session |
//! | `steps.csv` | the training loss every `report.loss_every` steps |
//! | `.lock` | held while a process trains the run |

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use s2s_data::{DataConfig, Tokenizer, TokenizerKind};

use crate::config::ExperimentConfig;
use crate::error::{io, Result, RunError};

/// A run folder's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// A run folder at `root` (which may not exist yet).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates a new, empty run folder that no other run uses, even within the same second.
    pub fn create(output_dir: &Path, name: &str) -> Result<Self> {
        create_stamped(output_dir, name).map(Self::at)
    }

    /// Creates this folder, new and empty (its parent may not exist yet); refuses one
    /// that exists.
    pub fn create_exact(&self) -> Result<Self> {
        if let Some(parent) = self.root.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::create_dir(&self.root).map_err(io(&self.root))?;
        Ok(self.clone())
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The folder's name (the run's name with its timestamp).
    pub fn name(&self) -> String {
        self.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Whether the folder looks like a run (it has a run.json or a config.toml).
    pub fn is_run(&self) -> bool {
        self.run_json().exists() || self.config_toml().exists()
    }

    pub fn config_toml(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn run_json(&self) -> PathBuf {
        self.root.join("run.json")
    }
    pub fn metrics_csv(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn steps_csv(&self) -> PathBuf {
        self.root.join("steps.csv")
    }
    pub fn loss_svg(&self) -> PathBuf {
        self.root.join("loss.svg")
    }
    /// Validation BLEU and chrF by epoch (runs that validate).
    pub fn scores_svg(&self) -> PathBuf {
        self.root.join("scores.svg")
    }
    pub fn translations_txt(&self) -> PathBuf {
        self.root.join("translations.txt")
    }
    pub fn report_html(&self) -> PathBuf {
        self.root.join("report.html")
    }
    /// `eval-<split>.json`, where `split` is valid, test, train or data.
    pub fn eval_json(&self, split: &str) -> PathBuf {
        self.root.join(format!("eval-{split}.json"))
    }
    /// The current heatmaps, one SVG per report sentence.
    pub fn attention(&self) -> PathBuf {
        self.root.join("attention")
    }
    /// The heatmaps kept at the end of epoch `epoch` (`report.track_attention`).
    pub fn attention_at_epoch(&self, epoch: usize) -> PathBuf {
        self.attention().join(format!("epoch-{epoch:04}"))
    }
    /// TensorBoard's event files (`report.tensorboard`).
    /// Where TensorBoard event files go: the run folder itself, so that `tensorboard
    /// --logdir experiments` shows one run per folder, named after it. A run started
    /// before kept its `tensorboard/` subfolder, and its later sessions write there too.
    pub fn tensorboard(&self) -> PathBuf {
        let before = self.root.join("tensorboard");
        if before.is_dir() {
            before
        } else {
            self.root.clone()
        }
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    /// The source and target tokenizers' files: word vocabularies in `checkpoints/`, BPE
    /// `tokenizer.json` files in `tokenizer/` (a folder `data.tokenizer_path` can name).
    pub fn tokenizer_files(&self, kind: TokenizerKind) -> [PathBuf; 2] {
        match kind {
            TokenizerKind::Word => ["src_vocab.json", "tgt_vocab.json"].map(|f| self.checkpoints().join(f)),
            TokenizerKind::Bpe => s2s_data::tokenizer::PAIR_FILES.map(|f| self.root.join("tokenizer").join(f)),
        }
    }

    /// Reads the run's tokenizers.
    pub fn read_tokenizers(&self, data: &DataConfig) -> Result<(Tokenizer, Tokenizer)> {
        let [s, t] = self.tokenizer_files(data.tokenizer);
        let norm = data.normalization();
        Ok((Tokenizer::load(data.tokenizer, norm, &s)?, Tokenizer::load(data.tokenizer, norm, &t)?))
    }

    /// Writes the tokenizers (at run start).
    pub fn write_tokenizers(&self, source: &Tokenizer, target: &Tokenizer) -> Result<()> {
        let files = self.tokenizer_files(source.kind());
        for (tok, file) in [source, target].into_iter().zip(&files) {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
            }
            write_atomic(file, tok.to_json()?.as_bytes())?;
        }
        Ok(())
    }
    fn lock_file(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// Reads the resolved `config.toml`.
    pub fn read_config(&self) -> Result<ExperimentConfig> {
        let p = self.config_toml();
        let text = fs::read_to_string(&p)
            .map_err(|_| RunError::Refused(format!("{} is not a run folder (no config.toml)", self.root.display())))?;
        Ok(ExperimentConfig::parse_resolved(&text, &p)?)
    }

    /// Replaces `config.toml` atomically.
    pub fn write_config(&self, cfg: &ExperimentConfig) -> Result<()> {
        write_atomic(&self.config_toml(), cfg.to_toml()?.as_bytes())
    }

    /// Takes the run's lock; see [`RunLock`].
    pub fn lock(&self) -> Result<RunLock> {
        let path = self.lock_file();
        let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
        match f.try_lock() {
            Ok(()) => Ok(RunLock(f)),
            Err(_) => Err(RunError::Refused(format!(
                "{} is being trained by another s2s process; wait for it or stop it first",
                self.root.display()
            ))),
        }
    }

    /// Whether some process holds the run's lock (is training it now).
    pub fn is_locked(&self) -> bool {
        let Ok(f) = fs::OpenOptions::new().write(true).open(self.lock_file()) else { return false };
        f.try_lock().is_err()
    }
}

/// Creates `<output_dir>/<name>-<UTC timestamp>[-k]/`, a folder no other run or sweep
/// uses, even within the same second; returns its path.
pub fn create_stamped(output_dir: &Path, name: &str) -> Result<PathBuf> {
    fs::create_dir_all(output_dir).map_err(io(output_dir))?;
    let base = format!("{name}-{}", crate::clock::stamp_now());
    for k in 1..10_000 {
        let dir = if k == 1 { output_dir.join(&base) } else { output_dir.join(format!("{base}-{k}")) };
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&dir)(e)),
        }
    }
    Err(RunError::Refused(format!("too many folders named {base} in {}", output_dir.display())))
}

/// Held while a process trains the run; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub struct RunLock(#[allow(dead_code)] fs::File);

/// Where this process writes `name` in `dir` before renaming it into place:
/// `.NAME.tmp-PID`.
pub fn temporary(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}{TMP_MARK}{}", std::process::id()))
}

const TMP_MARK: &str = ".tmp-";

/// Removes what writers killed mid-write left in `dir`: [`temporary`] files and folders of
/// processes that are gone (a kill -9 during a checkpoint write leaves a folder of
/// megabytes). Where process ids cannot be checked (no `/proc`), nothing is removed.
pub fn remove_leftovers(dir: &Path) -> Result<Vec<PathBuf>> {
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        return Ok(Vec::new());
    }
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix('.').and_then(|n| n.rsplit_once(TMP_MARK)).map(|(_, pid)| pid) else {
            continue;
        };
        if pid.parse::<u32>().is_err() || proc.join(pid).exists() {
            continue;
        }
        let p = entry.path();
        let gone = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
        gone.map_err(io(&p))?;
        removed.push(p);
    }
    Ok(removed)
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync the folder. A
/// crash leaves either the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = temporary(dir, &file_name);
    {
        let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir);
    Ok(())
}

/// Replaces `path` with what `draw` writes to the temporary path it is given, renamed
/// into place only when `draw` succeeds (for files a library writes itself, like charts).
pub fn replace_with<E>(path: &Path, draw: impl FnOnce(&Path) -> std::result::Result<(), E>) -> Result<()>
where
    RunError: From<E>,
{
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = temporary(dir, &file_name);
    if let Err(e) = draw(&tmp) {
        let _ = fs::remove_file(&tmp); // best effort: the error that matters is draw's
        return Err(e.into());
    }
    fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir);
    Ok(())
}

/// Flushes a folder's entries (a rename in it) to disk; best effort, as not every file
/// system can open a folder for syncing.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_second_runs_get_distinct_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = RunDir::create(dir.path(), "x").expect("a");
        let b = RunDir::create(dir.path(), "x").expect("b");
        assert_ne!(a, b);
        assert!(a.path().is_dir() && b.path().is_dir());
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::at(dir.path());
        let held = run.lock().expect("lock");
        assert!(run.is_locked());
        assert!(run.lock().is_err());
        drop(held);
        assert!(!run.is_locked());
    }

    #[test]
    fn config_is_replaced_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir::at(dir.path());
        let mut cfg = ExperimentConfig::default();
        run.write_config(&cfg).expect("write");
        cfg.train.epochs = 77;
        run.write_config(&cfg).expect("rewrite");
        assert_eq!(run.read_config().expect("read").train.epochs, 77);
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
