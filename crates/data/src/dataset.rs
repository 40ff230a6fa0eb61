//! Sentence-pair sources (embedded, synthetic, TSV) and their train/valid/test splits.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{DataConfig, Dataset};
use crate::digest::{sha256_hex, Sha256Hex};
use crate::error::{DataError, Result};
use crate::normalize::{has_english_prefix, normalize_text, normalize_words};
use crate::rng::Rng;
use crate::tokenizer::{Tokenizer, TokenizerKind, Tokens, WordCache};
use crate::vocab::Vocab;

/// The teaching notebook's five pairs.
pub const SEED_PAIRS: [(&str, &str); 5] = [
    ("i am a student", "je suis etudiant"),
    ("he is a teacher", "il est professeur"),
    ("she is a doctor", "elle est medecin"),
    ("we are engineers", "nous sommes ingenieurs"),
    ("they are artists", "ils sont artistes"),
];

/// One source/target sentence pair, as tokens (words, or the ids of subword pieces in the
/// corpus's tokenizers' vocabularies), with the target text that translations are scored
/// against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub src: Tokens,
    pub tgt: Tokens,
    /// The normalized target text: the words joined by spaces, or with subwords the text
    /// itself (NFC, whitespace collapsed), as sacreBLEU reads a reference file.
    pub reference: String,
}

impl Pair {
    fn words(src: Vec<String>, tgt: Vec<String>) -> Self {
        let reference = tgt.join(" ");
        Self { src: Tokens::Words(src), tgt: Tokens::Words(tgt), reference }
    }
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
    /// SHA-256 over the data config, every file hash and the tokenizers' hashes.
    pub sha256: String,
    pub files: Vec<FileHash>,
    /// SHA-256 of the source and target tokenizers' files (vocabularies for "word").
    pub tokenizers: [String; 2],
}

/// The splits, the tokenizers (with their vocabularies), and what was dropped.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub train: Vec<Pair>,
    pub valid: Vec<Pair>,
    pub test: Vec<Pair>,
    pub source: Tokenizer,
    pub target: Tokenizer,
    /// Malformed lines skipped because `skip_malformed` is on.
    pub skipped_lines: usize,
    /// Pairs dropped by the length or prefix filters.
    pub filtered_pairs: usize,
    pub fingerprint: Fingerprint,
}

impl Corpus {
    pub fn src_vocab(&self) -> &Vocab {
        self.source.vocab()
    }

    pub fn tgt_vocab(&self) -> &Vocab {
        self.target.vocab()
    }
}

/// Loads, normalizes, filters and splits the configured data, and builds the tokenizers:
/// word vocabularies from the train split, or BPE from `data.tokenizer_path` or learned
/// on the train split. `seed` drives the splits and the synthetic generators; subword
/// pairs are tokenized on `threads` threads (the result does not depend on how many).
pub fn load(cfg: &DataConfig, seed: u64, threads: usize) -> Result<Corpus> {
    load_with(cfg, seed, None, threads)
}

/// [`load`] with the given `(source, target)` tokenizers (a trained run's) instead of
/// building new ones.
pub fn load_with(cfg: &DataConfig, seed: u64, given: Option<(Tokenizer, Tokenizer)>, threads: usize) -> Result<Corpus> {
    cfg.validate()?;
    let mut stats = Stats::default();
    let mut files = Vec::new();
    let raw = read_raw(cfg, seed, &mut stats, &mut files)?;
    let (train, valid, test, source, target) = match cfg.tokenizer {
        TokenizerKind::Word => words(raw, cfg, seed, given, &mut stats),
        TokenizerKind::Bpe => subwords(raw, cfg, seed, given, &mut stats, threads)?,
    };
    if train.is_empty() {
        return Err(empty(cfg));
    }
    let fingerprint = fingerprint(cfg, files, [source.sha256()?, target.sha256()?]);
    Ok(Corpus {
        train,
        valid,
        test,
        source,
        target,
        skipped_lines: stats.skipped,
        filtered_pairs: stats.filtered,
        fingerprint,
    })
}

/// Learns the BPE tokenizers a run of `cfg` would learn (on its train split), for
/// `s2s tokenizer train`; returns them with the number of training texts.
pub fn learn_tokenizers(cfg: &DataConfig, seed: u64) -> Result<(Tokenizer, Tokenizer, usize)> {
    cfg.validate()?;
    if cfg.tokenizer != TokenizerKind::Bpe {
        return Err(DataError::InvalidConfig {
            key: "tokenizer",
            message: "only BPE tokenizers are learned ahead of a run; set data.tokenizer = \"bpe\"".into(),
        });
    }
    let mut stats = Stats::default();
    let raw = read_raw(cfg, seed, &mut stats, &mut Vec::new())?;
    let (train, _, _) = subword_texts(raw, cfg, seed, &mut stats)?;
    if train.is_empty() {
        return Err(empty(cfg));
    }
    let (s, t) = learn_pair(&train, cfg)?;
    Ok((s, t, train.len()))
}

fn empty(cfg: &DataConfig) -> DataError {
    let what = match (&cfg.path, &cfg.train_path) {
        (Some(p), _) | (None, Some(p)) if cfg.dataset == Dataset::Tsv => p.display().to_string(),
        _ => "the train split".to_string(),
    };
    DataError::Empty { what }
}

fn read_raw(cfg: &DataConfig, seed: u64, stats: &mut Stats, files: &mut Vec<FileHash>) -> Result<Raw> {
    Ok(match cfg.dataset {
        Dataset::Seed => {
            let raw = SEED_PAIRS.iter().map(|(s, t)| (s.to_string(), t.to_string())).collect();
            Raw::Splits(raw, Vec::new(), Vec::new())
        }
        Dataset::Copy | Dataset::Reverse => Raw::Synthetic(synthetic(cfg, seed)),
        Dataset::Tsv => {
            let mut read = |p: &Path| -> Result<Vec<(String, String)>> {
                let (raw, hash) = read_tsv(p, cfg.skip_malformed, stats)?;
                files.push(hash);
                Ok(raw)
            };
            if let Some(path) = &cfg.path {
                Raw::ToSplit(read(path)?)
            } else {
                let train_path = cfg
                    .train_path
                    .as_deref()
                    .ok_or(DataError::InvalidConfig { key: "train_path", message: "missing".into() })?;
                let train = read(train_path)?;
                let valid = cfg.valid_path.as_deref().map(&mut read).transpose()?.unwrap_or_default();
                let test = cfg.test_path.as_deref().map(&mut read).transpose()?.unwrap_or_default();
                Raw::Splits(train, valid, test)
            }
        }
    })
}

/// Text pairs as read, before normalization.
enum Raw {
    /// One file, to be split into train / valid / test.
    ToSplit(Vec<(String, String)>),
    /// Train, valid and test as given.
    Splits(Vec<(String, String)>, Vec<(String, String)>, Vec<(String, String)>),
    /// Generated symbol pairs, to be split.
    Synthetic(Vec<Pair>),
}

type Built = (Vec<Pair>, Vec<Pair>, Vec<Pair>, Tokenizer, Tokenizer);

/// The word pipeline: normalize, filter by length (before splitting), split, and build
/// the vocabularies from the train split.
fn words(raw: Raw, cfg: &DataConfig, seed: u64, given: Option<(Tokenizer, Tokenizer)>, stats: &mut Stats) -> Built {
    let (train, valid, test) = match raw {
        Raw::ToSplit(all) => split_grouped(prepare(all.into_iter(), cfg, stats), |p| p.src.clone(), cfg, seed),
        Raw::Synthetic(all) => split_grouped(all, |p| p.src.clone(), cfg, seed),
        Raw::Splits(a, b, c) => {
            let mut prep = |v: Vec<(String, String)>| prepare(v.into_iter(), cfg, stats);
            (prep(a), prep(b), prep(c))
        }
    };
    let norm = cfg.normalization();
    let (source, target) = given.unwrap_or_else(|| {
        // Which sides a vocabulary is built from: (source, target).
        let build = |src: bool, tgt: bool| {
            let sentences = train.iter().flat_map(|p| {
                let s = src.then_some(p.src.words());
                let t = tgt.then_some(p.tgt.words());
                s.into_iter().chain(t)
            });
            Tokenizer::word(norm, Vocab::build(sentences, cfg.min_freq, cfg.max_vocab_size))
        };
        if cfg.joint_vocab {
            let joint = build(true, true);
            (joint.clone(), joint)
        } else {
            (build(true, false), build(false, true))
        }
    });
    (train, valid, test, source, target)
}

/// The subword pipeline: normalize the text, split, learn or load the tokenizers, then
/// tokenize and filter by length in pieces.
fn subwords(
    raw: Raw,
    cfg: &DataConfig,
    seed: u64,
    given: Option<(Tokenizer, Tokenizer)>,
    stats: &mut Stats,
    threads: usize,
) -> Result<Built> {
    let (train, valid, test) = subword_texts(raw, cfg, seed, stats)?;
    let norm = cfg.normalization();
    let (source, target) = match given {
        Some(t) => t,
        None => match &cfg.tokenizer_path {
            Some(path) => crate::tokenizer::load_pair(path, cfg.joint_vocab, norm)?,
            None => learn_pair(&train, cfg)?,
        },
    };
    let mut tokenize = |v: Vec<(String, String)>| -> Result<Vec<Pair>> {
        let pairs = tokenize_pairs(v, &source, &target, threads)?;
        let before = pairs.len();
        let kept: Vec<Pair> = pairs
            .into_iter()
            .filter(|p| {
                !p.src.is_empty() && !p.tgt.is_empty() && p.src.len() < cfg.max_length && p.tgt.len() < cfg.max_length
            })
            .collect();
        stats.filtered += before - kept.len();
        Ok(kept)
    };
    Ok((tokenize(train)?, tokenize(valid)?, tokenize(test)?, source, target))
}

/// Tokenizes text pairs on `threads` threads, in order, each thread with its own word
/// caches; the target text is kept as the pair's reference, the source text dropped.
fn tokenize_pairs(
    texts: Vec<(String, String)>,
    source: &Tokenizer,
    target: &Tokenizer,
    threads: usize,
) -> Result<Vec<Pair>> {
    let threads = threads.max(1);
    let chunk = texts.len().div_ceil(threads).max(1);
    let total = texts.len();
    let mut rest = texts.into_iter();
    let chunks: Vec<Vec<(String, String)>> =
        (0..threads).map(|_| rest.by_ref().take(chunk).collect()).filter(|c: &Vec<_>| !c.is_empty()).collect();
    let one = |part: Vec<(String, String)>| -> Result<Vec<Pair>> {
        let (mut src, mut tgt) = (WordCache::new(source), WordCache::new(target));
        part.into_iter()
            .map(|(a, mut b)| {
                let pair_src = src.tokens(&a)?;
                let pair_tgt = tgt.tokens(&b)?;
                b.shrink_to_fit();
                Ok(Pair { src: pair_src, tgt: pair_tgt, reference: b })
            })
            .collect()
    };
    let parts: Vec<Result<Vec<Pair>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks.into_iter().map(|part| scope.spawn(move || one(part))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Err(DataError::Worker))).collect()
    });
    let mut out = Vec::with_capacity(total);
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

type Texts = Vec<(String, String)>;

/// Normalized (source, target) texts of each split, empty ones dropped.
fn subword_texts(raw: Raw, cfg: &DataConfig, seed: u64, stats: &mut Stats) -> Result<(Texts, Texts, Texts)> {
    let norm = cfg.normalization();
    let mut texts = |v: Vec<(String, String)>| -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(v.len());
        for (a, b) in v {
            let (a, b) = (normalize_text(&a, &norm), normalize_text(&b, &norm));
            if a.is_empty() || b.is_empty() {
                stats.filtered += 1;
                continue;
            }
            out.push(if cfg.reverse { (b, a) } else { (a, b) });
        }
        out
    };
    let (train, valid, test) = match raw {
        Raw::ToSplit(all) => split_grouped(texts(all), |p| p.0.clone(), cfg, seed),
        Raw::Splits(a, b, c) => (texts(a), texts(b), texts(c)),
        Raw::Synthetic(_) => {
            return Err(DataError::InvalidConfig { key: "tokenizer", message: "not for synthetic tasks".into() })
        }
    };
    Ok((train, valid, test))
}

/// BPE tokenizers learned on the train split's texts: one on both sides when
/// `joint_vocab`, else one per side.
pub fn learn_pair(train: &[(String, String)], cfg: &DataConfig) -> Result<(Tokenizer, Tokenizer)> {
    let norm = cfg.normalization();
    let learn = |texts: Vec<&str>| Tokenizer::learn_bpe(texts.into_iter(), &norm, cfg.max_vocab_size, cfg.min_freq);
    if cfg.joint_vocab {
        let joint = learn(train.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]).collect())?;
        Ok((joint.clone(), joint))
    } else {
        Ok((learn(train.iter().map(|p| p.0.as_str()).collect())?, learn(train.iter().map(|p| p.1.as_str()).collect())?))
    }
}

#[derive(Default)]
struct Stats {
    skipped: usize,
    filtered: usize,
}

/// Normalizes, applies the prefix filter and `reverse`, and drops over-long pairs.
fn prepare(raw: impl Iterator<Item = (String, String)>, cfg: &DataConfig, stats: &mut Stats) -> Vec<Pair> {
    let norm = cfg.normalization();
    let mut out = Vec::new();
    for (a, b) in raw {
        let (english, other) = (normalize_words(&a, &norm), normalize_words(&b, &norm));
        let keep = !english.is_empty()
            && !other.is_empty()
            && (!cfg.english_prefixes || has_english_prefix(&english))
            && english.len() < cfg.max_length
            && other.len() < cfg.max_length;
        if !keep {
            stats.filtered += 1;
            continue;
        }
        out.push(if cfg.reverse { Pair::words(other, english) } else { Pair::words(english, other) });
    }
    out
}

/// Reads `source<TAB>target[<TAB>...]` lines; returns the raw pairs and the file hash.
fn read_tsv(path: &Path, skip_malformed: bool, stats: &mut Stats) -> Result<(Vec<(String, String)>, FileHash)> {
    let bytes = crate::files::read_regular(path, crate::files::MAX_DATA_FILE_BYTES)
        .map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let hash = FileHash { path: path.to_path_buf(), sha256: sha256_hex(&bytes) };
    let text = bytes.strip_prefix(crate::files::BOM).unwrap_or(&bytes);
    let mut pairs = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        if line.len() > crate::files::MAX_LINE_BYTES {
            let limit = crate::files::MAX_LINE_BYTES;
            return Err(DataError::LineTooLong { path: path.to_path_buf(), line: line_no, limit });
        }
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
            Pair::words(src, tgt)
        })
        .collect()
}

/// Splits by distinct source sentence (`key`), so that all translations of one sentence
/// land in the same split; items keep their original order inside each split.
fn split_grouped<T, K: Ord + std::hash::Hash + Clone>(
    items: Vec<T>,
    key: impl Fn(&T) -> K,
    cfg: &DataConfig,
    seed: u64,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let distinct: BTreeSet<K> = items.iter().map(&key).collect();
    let mut sources: Vec<K> = distinct.into_iter().collect();
    Rng::derive(seed, "split").shuffle(&mut sources);
    let n = sources.len();
    let n_valid = (n as f64 * cfg.valid_fraction).round() as usize;
    let n_test = (n as f64 * cfg.test_fraction).round() as usize;
    let which: HashMap<K, u8> = sources
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            (
                s,
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
    for p in items {
        match which.get(&key(&p)).copied().unwrap_or(0) {
            1 => valid.push(p),
            2 => test.push(p),
            _ => train.push(p),
        }
    }
    (train, valid, test)
}

/// The data config as the fingerprint hashes it: the normalization resolved, and for word
/// runs without the keys that came with subwords, so that it reads as it did before them.
fn fingerprint_json(cfg: &DataConfig) -> String {
    let mut filled = cfg.clone();
    filled.fill_defaults();
    let mut json = serde_json::to_value(&filled).unwrap_or_default();
    if let Some(map) = json.as_object_mut().filter(|_| cfg.tokenizer == TokenizerKind::Word) {
        // serde_json keeps the struct's key order (preserve_order).
        for key in ["tokenizer", "tokenizer_path", "joint_vocab"] {
            if map.get(key).is_some_and(|v| v.is_null() || *v == false || v == "word") {
                map.shift_remove(key);
            }
        }
    }
    json.to_string()
}

/// The data's identity. Word runs hash the config and files only, as before tokenizers
/// existed, so that their fingerprints stay the same; their vocabularies follow from both.
fn fingerprint(cfg: &DataConfig, files: Vec<FileHash>, tokenizers: [String; 2]) -> Fingerprint {
    let mut h = Sha256Hex::new();
    h.update(fingerprint_json(cfg).as_bytes());
    for f in &files {
        h.update(f.sha256.as_bytes());
    }
    if cfg.tokenizer != TokenizerKind::Word {
        for t in &tokenizers {
            h.update(t.as_bytes());
        }
    }
    Fingerprint { sha256: h.finish(), files, tokenizers }
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
        let c = load(&DataConfig::default(), 0, 2).expect("seed loads");
        assert_eq!(c.train.len(), 5);
        assert_eq!(c.train[0].tgt, ["je", "suis", "etudiant"]);
        assert!(c.valid.is_empty());
        assert_eq!(c.src_vocab().len(), 4 + 14);
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
        let cfg =
            DataConfig { valid_fraction: 0.2, test_fraction: 0.1, letters_only: Some(false), ..tsv_cfg(f.path()) };
        let c = load(&cfg, 3, 2).expect("loads");
        assert_eq!(c.train.len() + c.valid.len() + c.test.len(), 600);
        let train: BTreeSet<_> = c.train.iter().map(|p| p.src.clone()).collect();
        for p in c.valid.iter().chain(&c.test) {
            assert!(!train.contains(&p.src), "{:?} leaked", p.src);
        }
        let valid: BTreeSet<_> = c.valid.iter().map(|p| p.src.clone()).collect();
        assert!(c.test.iter().all(|p| !valid.contains(&p.src)));
        assert_eq!(valid.len(), 40);
        // Deterministic for a seed, different for another.
        let again = load(&cfg, 3, 2).expect("loads");
        assert_eq!(again.valid, c.valid);
        assert_ne!(load(&cfg, 4, 2).expect("loads").valid, c.valid);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let f = tsv(b"go .\tva !\nno tab here\n");
        let err = load(&tsv_cfg(f.path()), 0, 2).expect_err("must fail").to_string();
        assert!(err.contains(":2:") && err.contains("no tab"), "{err}");
        let c =
            load(&DataConfig { skip_malformed: true, valid_fraction: 0.0, ..tsv_cfg(f.path()) }, 0, 2).expect("skips");
        assert_eq!(c.skipped_lines, 1);

        let f = tsv(b"go .\tva !\n\xff\xfe\tx\n");
        let err = load(&tsv_cfg(f.path()), 0, 2).expect_err("must fail").to_string();
        assert!(err.contains(":2: not valid UTF-8"), "{err}");

        let err = load(&tsv_cfg(Path::new("/no/such/file.tsv")), 0, 2).expect_err("must fail").to_string();
        assert!(err.contains("/no/such/file.tsv"), "{err}");

        let f = tsv(b"a b c d e f g h i j k l\tx\n");
        let err = load(&tsv_cfg(f.path()), 0, 2).expect_err("must fail").to_string();
        assert!(err.contains("no sentence pairs left"), "{err}");
    }

    /// Regression: a UTF-8 byte-order mark (Windows editors write one) became part of the
    /// first word (`"\u{feff}i"` beside `"i"`) when letters_only was off.
    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_word() {
        let f = tsv(b"\xEF\xBB\xBFi am\tje suis\ni go\tje vais\n");
        let cfg =
            DataConfig { letters_only: Some(false), ascii: Some(false), valid_fraction: 0.0, ..tsv_cfg(f.path()) };
        let c = load(&cfg, 0, 2).expect("loads");
        let words: Vec<String> = (0..c.src_vocab().len() as u32).map(|i| c.src_vocab().decode(&[i]).join("")).collect();
        assert!(words.contains(&"i".to_string()) && !words.iter().any(|w| w.contains('\u{feff}')), "{words:?}");
    }

    #[test]
    fn word_fingerprints_read_as_before_subwords() {
        // serde_json::to_string(&DataConfig::default()) at commit 237de94, before the
        // tokenizer keys: the hash of a word run made then must not change, or it could not
        // be resumed.
        let before = r#"{"dataset":"seed","path":null,"train_path":null,"valid_path":null,"test_path":null,"valid_fraction":0.1,"test_fraction":0.0,"max_length":10,"ascii":true,"lowercase":true,"separate_punctuation":true,"letters_only":true,"english_prefixes":false,"reverse":false,"min_freq":1,"max_vocab_size":0,"skip_malformed":false,"shuffle":true,"length_bucketing":false,"synthetic_count":2000,"synthetic_min_length":3,"synthetic_max_length":8,"synthetic_alphabet":12}"#;
        assert_eq!(fingerprint_json(&DataConfig::default()), before);
        let bpe = DataConfig { tokenizer: TokenizerKind::Bpe, max_vocab_size: 100, ..Default::default() };
        assert!(fingerprint_json(&bpe).contains(r#""tokenizer":"bpe""#));
    }

    #[test]
    fn reverse_and_synthetic() {
        let f = tsv(b"I am cold.\tJ'ai froid.\n");
        let c = load(&DataConfig { reverse: true, valid_fraction: 0.0, ..tsv_cfg(f.path()) }, 0, 2).expect("loads");
        assert_eq!(c.train[0].src, ["j", "ai", "froid", "."]);
        let cfg = DataConfig { dataset: Dataset::Reverse, synthetic_count: 50, ..Default::default() };
        let c = load(&cfg, 1, 2).expect("loads");
        for p in c.train.iter().chain(&c.valid) {
            let mut r = p.src.words().to_vec();
            r.reverse();
            assert_eq!(r, p.tgt.words());
        }
    }
}
