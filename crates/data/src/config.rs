//! The `[data]` section of an experiment config.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::normalize::Normalization;
use crate::tokenizer::TokenizerKind;

/// Where the sentence pairs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataset {
    /// The teaching notebook's five English-French pairs, compiled into the binary.
    Seed,
    /// Synthetic task: the target is the source.
    Copy,
    /// Synthetic task: the target is the source reversed.
    Reverse,
    /// Tab-separated files given by `path` or `train_path`/`valid_path`/`test_path`.
    Tsv,
}

impl DataConfig {
    /// Whether the configured dataset reads `key` (a `[data]` key): the file keys are the
    /// TSV dataset's, the `synthetic_*` keys the synthetic tasks'.
    pub fn reads(&self, key: &str) -> bool {
        match key {
            "path" | "train_path" | "valid_path" | "test_path" | "skip_malformed" => self.dataset == Dataset::Tsv,
            k if k.starts_with("synthetic_") => matches!(self.dataset, Dataset::Copy | Dataset::Reverse),
            _ => true,
        }
    }
}

impl Dataset {
    /// The name a config gives (`data.dataset`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Seed => "seed",
            Self::Copy => "copy",
            Self::Reverse => "reverse",
            Self::Tsv => "tsv",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub dataset: Dataset,
    /// One TSV file, split into train/valid/test by the fractions below.
    pub path: Option<PathBuf>,
    /// Separate TSV files (used when `path` is not set).
    pub train_path: Option<PathBuf>,
    pub valid_path: Option<PathBuf>,
    pub test_path: Option<PathBuf>,
    /// Share of source sentences held out for validation when splitting.
    pub valid_fraction: f64,
    /// Share of source sentences held out for test when splitting.
    pub test_fraction: f64,
    /// Longest sentence kept, in tokens including EOS (both sides): words, or subword
    /// pieces with `tokenizer = "bpe"`.
    pub max_length: usize,
    /// "word" (the tutorial's normalization, a word vocabulary) or "bpe" (subwords).
    pub tokenizer: TokenizerKind,
    /// A `tokenizer.json` made by `s2s tokenizer train` (or a folder holding
    /// `source.json` and `target.json`); without it a BPE run learns its own on the
    /// train split. BPE only.
    pub tokenizer_path: Option<PathBuf>,
    /// One vocabulary (and, with BPE, one tokenizer) for both sides.
    pub joint_vocab: bool,
    /// Unicode to ASCII: NFD, then combining marks dropped. Default: on for "word",
    /// off for "bpe" (which keeps case and accents, in NFC).
    pub ascii: Option<bool>,
    /// Default: on for "word", off for "bpe".
    pub lowercase: Option<bool>,
    /// Put a space before `.`, `!` and `?` so they become tokens ("word" only; default on).
    pub separate_punctuation: Option<bool>,
    /// Replace every run of characters other than letters and `.!?` by one space ("word"
    /// only; default on).
    pub letters_only: Option<bool>,
    /// Keep only pairs whose English side starts like "i am", "he is", ... (the tutorial's filter).
    pub english_prefixes: bool,
    /// Swap the columns: translate from the second column to the first.
    pub reverse: bool,
    /// Words seen fewer times than this in the train split become UNK; with BPE, pairs
    /// seen fewer times are not merged.
    pub min_freq: usize,
    /// Largest vocabulary size including the special tokens (0 = no limit). With BPE,
    /// the vocabulary size to learn (required): alphabet + merges + 4 specials.
    pub max_vocab_size: usize,
    /// Skip lines without a tab instead of failing; the count is reported.
    pub skip_malformed: bool,
    /// Reshuffle the training pairs every epoch.
    pub shuffle: bool,
    /// Group pairs of similar length into batches of about `batch_size` × the mean target
    /// length in tokens (see [`crate::BatchPlan::epoch`]). Off by default: random batches
    /// are the tutorial's, and bucketing by sentence count cost Tatoeba 0.8 BLEU; the token
    /// budget closes most of that gap (BENCHMARKS.md).
    pub length_bucketing: bool,
    /// Synthetic tasks: number of sequences generated.
    pub synthetic_count: usize,
    /// Synthetic tasks: shortest and longest sequence, in tokens (without EOS).
    pub synthetic_min_length: usize,
    pub synthetic_max_length: usize,
    /// Synthetic tasks: number of distinct symbols.
    pub synthetic_alphabet: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: Dataset::Seed,
            path: None,
            train_path: None,
            valid_path: None,
            test_path: None,
            valid_fraction: 0.1,
            test_fraction: 0.0,
            max_length: 10,
            tokenizer: TokenizerKind::Word,
            tokenizer_path: None,
            joint_vocab: false,
            ascii: None,
            lowercase: None,
            separate_punctuation: None,
            letters_only: None,
            english_prefixes: false,
            reverse: false,
            min_freq: 1,
            max_vocab_size: 0,
            skip_malformed: false,
            shuffle: true,
            length_bucketing: false,
            synthetic_count: 2000,
            synthetic_min_length: 3,
            synthetic_max_length: 8,
            synthetic_alphabet: 12,
        }
    }
}

/// The longest sentences supported, in tokens.
pub const MAX_LENGTH_LIMIT: usize = 1024;

impl DataConfig {
    /// The normalization steps: those the config sets, the tokenizer's defaults for the rest.
    pub fn normalization(&self) -> Normalization {
        let word = self.tokenizer == TokenizerKind::Word;
        Normalization {
            ascii: self.ascii.unwrap_or(word),
            lowercase: self.lowercase.unwrap_or(word),
            separate_punctuation: self.separate_punctuation.unwrap_or(word),
            letters_only: self.letters_only.unwrap_or(word),
        }
    }

    /// Writes the resolved normalization into the config, so that a run's config.toml
    /// says what was done.
    pub fn fill_defaults(&mut self) {
        let n = self.normalization();
        self.ascii = Some(n.ascii);
        self.lowercase = Some(n.lowercase);
        self.separate_punctuation = Some(n.separate_punctuation);
        self.letters_only = Some(n.letters_only);
    }

    /// Checks values that serde's types cannot express.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, message: String| Err(DataError::InvalidConfig { key, message });
        if self.max_length > MAX_LENGTH_LIMIT {
            return bad("max_length", format!("at most {MAX_LENGTH_LIMIT}, got {}", self.max_length));
        }
        if self.tokenizer == TokenizerKind::Bpe {
            let n = self.normalization();
            for (key, on) in [("separate_punctuation", n.separate_punctuation), ("letters_only", n.letters_only)] {
                if on {
                    return bad(key, "is a word-tokenizer step; BPE keeps punctuation as pieces (set it false)".into());
                }
            }
            if self.english_prefixes {
                return bad("english_prefixes", "is the tutorial's word-level filter; not available with BPE".into());
            }
            if matches!(self.dataset, Dataset::Copy | Dataset::Reverse) {
                return bad("tokenizer", "the synthetic tasks are symbol sequences; use tokenizer = \"word\"".into());
            }
            if self.max_vocab_size == 0 && self.tokenizer_path.is_none() {
                return bad("max_vocab_size", "BPE needs a vocabulary size to learn, e.g. 8000".into());
            }
        } else if self.tokenizer_path.is_some() {
            return bad(
                "tokenizer_path",
                "is for tokenizer = \"bpe\"; the word tokenizer learns its vocabulary".into(),
            );
        }
        if self.max_length < 2 {
            return bad("max_length", format!("must be at least 2, got {}", self.max_length));
        }
        for (key, v) in [("valid_fraction", self.valid_fraction), ("test_fraction", self.test_fraction)] {
            if !(0.0..1.0).contains(&v) {
                return bad(key, format!("must be in [0, 1), got {v}"));
            }
        }
        if self.valid_fraction + self.test_fraction >= 1.0 {
            return bad("valid_fraction", "valid_fraction + test_fraction must be below 1".into());
        }
        if self.min_freq == 0 {
            return bad("min_freq", "must be at least 1".into());
        }
        if self.dataset == Dataset::Tsv && self.path.is_none() && self.train_path.is_none() {
            return bad(
                "path",
                "dataset = \"tsv\" needs data.path (one file to split) or data.train_path, \
                 e.g. --set data.train_path=pairs.tsv"
                    .into(),
            );
        }
        if matches!(self.dataset, Dataset::Copy | Dataset::Reverse) {
            if self.synthetic_min_length == 0 || self.synthetic_min_length > self.synthetic_max_length {
                return bad(
                    "synthetic_min_length",
                    format!(
                        "need 1 <= synthetic_min_length <= synthetic_max_length, got {} and {}",
                        self.synthetic_min_length, self.synthetic_max_length
                    ),
                );
            }
            if self.synthetic_max_length + 1 > self.max_length {
                return bad(
                    "synthetic_max_length",
                    format!("{} plus EOS exceeds max_length {}", self.synthetic_max_length, self.max_length),
                );
            }
            if self.synthetic_alphabet == 0 || self.synthetic_count == 0 {
                return bad("synthetic_count", "synthetic_count and synthetic_alphabet must be positive".into());
            }
        }
        Ok(())
    }
}
