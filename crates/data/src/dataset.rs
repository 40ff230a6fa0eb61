//! Sentence-pair sources (embedded, synthetic, TSV) and their train/valid/test splits.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{DataConfig, Dataset};
use crate::error::{DataError, Result};
use crate::normalize::{has_english_prefix, normalize};
use crate::rng::Rng;
use crate::vocab::Vocab;

/// The teaching notebook's five pairs.
pub const SEED_PAIRS: [(&str, &str); 5] = [
    ("i am a student", "je suis etudiant"),
    ("he is a teacher", "il est professeur"),
    ("she is a doctor", "elle est medecin"),
    ("we are engineers", "nous sommes ingenieurs"),
    ("they are artists", "ils sont artistes"),
];

/// One source/target sentence pair, as normalized tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub src: Vec<String>,
    pub tgt: Vec<String>,
}

/// A data file and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileHash {
    pub path: PathBuf,
    pub sha256: String,
}

/// What identifies the data a model was trained on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    /// SHA-256 over the data config and every file hash.
    pub sha256: String,
    pub files: Vec<FileHash>,
}

/// The splits, the vocabularies built from the train split, and what was dropped.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub train: Vec<Pair>,
    pub valid: Vec<Pair>,
    pub test: Vec<Pair>,
    pub src_vocab: Vocab,
    pub tgt_vocab: Vocab,
    /// Malformed lines skipped because `skip_malformed` is on.
    pub skipped_lines: usize,
    /// Pairs dropped by the length or prefix filters.
    pub filtered_pairs: usize,
    pub fingerprint: Fingerprint,
}

/// Loads, normalizes, filters and splits the configured data; `seed` drives the splits
/// and the synthetic generators.
pub fn load(cfg: &DataConfig, seed: u64) -> Result<Corpus> {
    cfg.validate()?;
    let mut stats = Stats::default();
    let mut files = Vec::new();
    let (train, valid, test) = match cfg.dataset {
        Dataset::Seed => {
            let raw = SEED_PAIRS.iter().map(|(s, t)| (s.to_string(), t.to_string()));
            let pairs = prepare(raw, cfg, &mut stats);
            (pairs, Vec::new(), Vec::new())
        }
        Dataset::Copy | Dataset::Reverse => {
            let pairs = synthetic(cfg, seed);
            split_grouped(pairs, cfg, seed)
        }
        Dataset::Tsv => {
            let mut read = |p: &Path| -> Result<Vec<Pair>> {
                let (raw, hash) = read_tsv(p, cfg.skip_malformed, &mut stats)?;
                files.push(hash);
                Ok(prepare(raw.into_iter(), cfg, &mut stats))
            };
            if let Some(path) = &cfg.path {
                let all = read(path)?;
                split_grouped(all, cfg, seed)
            } else {
                let train_path = cfg
                    .train_path
                    .as_deref()
                    .ok_or(DataError::InvalidConfig { key: "train_path", message: "missing".into() })?;
                let train = read(train_path)?;
                let valid = cfg.valid_path.as_deref().map(&mut read).transpose()?.unwrap_or_default();
                let test = cfg.test_path.as_deref().map(&mut read).transpose()?.unwrap_or_default();
                (train, valid, test)
            }
        }
    };
    if train.is_empty() {
        let what = match (&cfg.path, &cfg.train_path) {
            (Some(p), _) | (None, Some(p)) if cfg.dataset == Dataset::Tsv => p.display().to_string(),
            _ => "the train split".to_string(),
        };
        return Err(DataError::Empty { what });
    }
    let src_vocab = Vocab::build(train.iter().map(|p| p.src.as_slice()), cfg.min_freq, cfg.max_vocab_size);
    let tgt_vocab = Vocab::build(train.iter().map(|p| p.tgt.as_slice()), cfg.min_freq, cfg.max_vocab_size);
    let fingerprint = fingerprint(cfg, files);
    Ok(Corpus {
        train,
        valid,
        test,
        src_vocab,
        tgt_vocab,
        skipped_lines: stats.skipped,
        filtered_pairs: stats.filtered,
        fingerprint,
    })
}

#[derive(Default)]
struct Stats {
    skipped: usize,
    filtered: usize,
}

/// Normalizes, applies the prefix filter and `reverse`, and drops over-long pairs.
fn prepare(raw: impl Iterator<Item = (String, String)>, cfg: &DataConfig, stats: &mut Stats) -> Vec<Pair> {
    let mut out = Vec::new();
    for (a, b) in raw {
        let (english, other) = (normalize(&a, cfg), normalize(&b, cfg));
        let keep = !english.is_empty()
            && !other.is_empty()
            && (!cfg.english_prefixes || has_english_prefix(&english))
            && english.len() < cfg.max_length
            && other.len() < cfg.max_length;
        if !keep {
            stats.filtered += 1;
            continue;
        }
        out.push(if cfg.reverse { Pair { src: other, tgt: english } } else { Pair { src: english, tgt: other } });
    }
    out
}

/// Reads `source<TAB>target[<TAB>...]` lines; returns the raw pairs and the file hash.
fn read_tsv(path: &Path, skip_malformed: bool, stats: &mut Stats) -> Result<(Vec<(String, String)>, FileHash)> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let hash = FileHash { path: path.to_path_buf(), sha256: hex(&Sha256::digest(&bytes)) };
    let mut pairs = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let line = std::str::from_utf8(line)
            .map_err(|_| DataError::InvalidUtf8 { path: path.to_path_buf(), line: line_no })?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let mut cols = line.split('\t');
        match (cols.next(), cols.next()) {
            (Some(a), Some(b)) => pairs.push((a.to_string(), b.to_string())),
            _ if skip_malformed => stats.skipped += 1,
            _ => return Err(DataError::MissingTab { path: path.to_path_buf(), line: line_no }),
        }
    }
    Ok((pairs, hash))
}

/// Random symbol sequences; the target is a copy or the reverse of the source.
fn synthetic(cfg: &DataConfig, seed: u64) -> Vec<Pair> {
    let mut rng = Rng::derive(seed, "synthetic");
    let symbol = |k: usize| {
        if cfg.synthetic_alphabet <= 26 {
            ((b'a' + k as u8) as char).to_string()
        } else {
            format!("s{k}")
        }
    };
    (0..cfg.synthetic_count)
        .map(|_| {
            let span = cfg.synthetic_max_length - cfg.synthetic_min_length + 1;
            let len = cfg.synthetic_min_length + rng.below(span);
            let src: Vec<String> = (0..len).map(|_| symbol(rng.below(cfg.synthetic_alphabet))).collect();
            let mut tgt = src.clone();
            if cfg.dataset == Dataset::Reverse {
                tgt.reverse();
            }
            Pair { src, tgt }
        })
        .collect()
}

/// Splits by distinct source sentence, so that all translations of one sentence land in
/// the same split; pairs keep their original order inside each split.
fn split_grouped(pairs: Vec<Pair>, cfg: &DataConfig, seed: u64) -> (Vec<Pair>, Vec<Pair>, Vec<Pair>) {
    let distinct: BTreeSet<&[String]> = pairs.iter().map(|p| p.src.as_slice()).collect();
    let mut sources: Vec<&[String]> = distinct.into_iter().collect();
    Rng::derive(seed, "split").shuffle(&mut sources);
    let n = sources.len();
    let n_valid = (n as f64 * cfg.valid_fraction).round() as usize;
    let n_test = (n as f64 * cfg.test_fraction).round() as usize;
    let which: HashMap<Vec<String>, u8> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                s.to_vec(),
                if i < n_valid {
                    1
                } else if i < n_valid + n_test {
                    2
                } else {
                    0
                },
            )
        })
        .collect();
    let (mut train, mut valid, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for p in pairs {
        match which.get(&p.src).copied().unwrap_or(0) {
            1 => valid.push(p),
            2 => test.push(p),
            _ => train.push(p),
        }
    }
    (train, valid, test)
}

fn fingerprint(cfg: &DataConfig, files: Vec<FileHash>) -> Fingerprint {
    let mut h = Sha256::new();
    h.update(serde_json::to_string(cfg).unwrap_or_default().as_bytes());
    for f in &files {
        h.update(f.sha256.as_bytes());
    }
    Fingerprint { sha256: hex(&h.finalize()), files }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tsv(lines: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(lines).expect("write");
        f
    }

    fn tsv_cfg(path: &Path) -> DataConfig {
        DataConfig { dataset: Dataset::Tsv, path: Some(path.to_path_buf()), ..Default::default() }
    }

    #[test]
    fn seed_dataset_is_the_notebook() {
        let c = load(&DataConfig::default(), 0).expect("seed loads");
        assert_eq!(c.train.len(), 5);
        assert_eq!(c.train[0].tgt, ["je", "suis", "etudiant"]);
        assert!(c.valid.is_empty());
        assert_eq!(c.src_vocab.len(), 4 + 14);
    }

    #[test]
    fn split_never_leaks_a_source_sentence() {
        let mut text = String::new();
        for i in 0..200 {
            for j in 0..3 {
                text.push_str(&format!("sentence number {i}x\tphrase {i} variante {j}\tCC-BY attribution\n"));
            }
        }
        let f = tsv(text.as_bytes());
        let cfg = DataConfig { valid_fraction: 0.2, test_fraction: 0.1, letters_only: false, ..tsv_cfg(f.path()) };
        let c = load(&cfg, 3).expect("loads");
        assert_eq!(c.train.len() + c.valid.len() + c.test.len(), 600);
        let train: BTreeSet<_> = c.train.iter().map(|p| p.src.clone()).collect();
        for p in c.valid.iter().chain(&c.test) {
            assert!(!train.contains(&p.src), "{:?} leaked", p.src);
        }
        let valid: BTreeSet<_> = c.valid.iter().map(|p| p.src.clone()).collect();
        assert!(c.test.iter().all(|p| !valid.contains(&p.src)));
        assert_eq!(valid.len(), 40);
        // Deterministic for a seed, different for another.
        let again = load(&cfg, 3).expect("loads");
        assert_eq!(again.valid, c.valid);
        assert_ne!(load(&cfg, 4).expect("loads").valid, c.valid);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let f = tsv(b"go .\tva !\nno tab here\n");
        let err = load(&tsv_cfg(f.path()), 0).expect_err("must fail").to_string();
        assert!(err.contains(":2:") && err.contains("no tab"), "{err}");
        let c = load(&DataConfig { skip_malformed: true, valid_fraction: 0.0, ..tsv_cfg(f.path()) }, 0).expect("skips");
        assert_eq!(c.skipped_lines, 1);

        let f = tsv(b"go .\tva !\n\xff\xfe\tx\n");
        let err = load(&tsv_cfg(f.path()), 0).expect_err("must fail").to_string();
        assert!(err.contains(":2: not valid UTF-8"), "{err}");

        let err = load(&tsv_cfg(Path::new("/no/such/file.tsv")), 0).expect_err("must fail").to_string();
        assert!(err.contains("/no/such/file.tsv"), "{err}");

        let f = tsv(b"a b c d e f g h i j k l\tx\n");
        let err = load(&tsv_cfg(f.path()), 0).expect_err("must fail").to_string();
        assert!(err.contains("no sentence pairs left"), "{err}");
    }

    #[test]
    fn reverse_and_synthetic() {
        let f = tsv(b"I am cold.\tJ'ai froid.\n");
        let c = load(&DataConfig { reverse: true, valid_fraction: 0.0, ..tsv_cfg(f.path()) }, 0).expect("loads");
        assert_eq!(c.train[0].src, ["j", "ai", "froid", "."]);
        let cfg = DataConfig { dataset: Dataset::Reverse, synthetic_count: 50, ..Default::default() };
        let c = load(&cfg, 1).expect("loads");
        for p in c.train.iter().chain(&c.valid) {
            let mut r = p.src.clone();
            r.reverse();
            assert_eq!(r, p.tgt);
        }
    }
}
