//! Text to tokens and back: the word tokenizer (the tutorial's normalization and a word
//! vocabulary) or BPE subwords ([`bpe`]). A [`Tokenizer`] owns its vocabulary, so ids,
//! pieces and text always agree.

pub mod bpe;
pub mod cache;
pub mod tokens;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::normalize::{normalize_words, Normalization};
use crate::vocab::{Vocab, EOS, PAD, SOS};

pub use crate::vocab::Encodable;
pub use cache::WordCache;
pub use tokens::Tokens;

/// `data.tokenizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenizerKind {
    /// Whitespace words after the tutorial's normalization.
    #[default]
    Word,
    /// Byte-pair-encoding subwords (Hugging Face `tokenizer.json`).
    Bpe,
}

#[derive(Debug, Clone)]
enum Engine {
    Word(Normalization),
    Bpe(Box<tokenizers::Tokenizer>),
}

/// One side's tokenizer: normalization, splitting into tokens, and the vocabulary.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    engine: Engine,
    vocab: Vocab,
}

/// A sentence as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenized {
    pub tokens: Vec<String>,
    /// The tokens' ids followed by EOS.
    pub ids: Vec<u32>,
    /// What became UNK: words missing from a word vocabulary, or characters a BPE
    /// tokenizer never saw.
    pub unknown: Vec<String>,
    /// Characters beyond ASCII that the word normalization removed altogether (an emoji
    /// with `letters_only`): the model never saw them.
    pub dropped: Vec<String>,
}

impl Tokenizer {
    /// A word tokenizer over `vocab`.
    pub fn word(norm: Normalization, vocab: Vocab) -> Self {
        Self { engine: Engine::Word(norm), vocab }
    }

    /// Learns a BPE tokenizer from `texts`.
    pub fn learn_bpe<'a>(
        texts: impl Iterator<Item = &'a str> + Send,
        norm: &Normalization,
        vocab_size: usize,
        min_freq: usize,
    ) -> Result<Self> {
        Ok(Self::from_hf(bpe::train(texts, norm, vocab_size, min_freq)?))
    }

    fn from_hf(tok: tokenizers::Tokenizer) -> Self {
        let vocab = Vocab::from_tokens(bpe::tokens(&tok));
        Self { engine: Engine::Bpe(Box::new(tok)), vocab }
    }

    /// Reads what [`Self::save`] wrote: a word vocabulary (JSON list) for `Word`, a
    /// `tokenizer.json` for `Bpe`.
    pub fn load(kind: TokenizerKind, norm: Normalization, path: &Path) -> Result<Self> {
        match kind {
            TokenizerKind::Word => Ok(Self::word(norm, Vocab::load(path)?)),
            TokenizerKind::Bpe => Ok(Self::from_hf(bpe::load(path)?)),
        }
    }

    pub fn kind(&self) -> TokenizerKind {
        match self.engine {
            Engine::Word(_) => TokenizerKind::Word,
            Engine::Bpe(_) => TokenizerKind::Bpe,
        }
    }

    /// The file contents [`Self::save`] writes.
    pub fn to_json(&self) -> Result<String> {
        match &self.engine {
            Engine::Word(_) => self.vocab.to_json(),
            Engine::Bpe(t) => bpe::to_json(t),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self.to_json()?;
        std::fs::write(path, json).map_err(|source| DataError::Io { path: path.to_path_buf(), source })
    }

    /// SHA-256 of the saved file's bytes: what identifies this tokenizer.
    pub fn sha256(&self) -> Result<String> {
        Ok(crate::digest::sha256_hex(self.to_json()?.as_bytes()))
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// The tokens of one raw text (no EOS), and what became UNK.
    pub fn split(&self, text: &str) -> Result<(Vec<String>, Vec<String>)> {
        match &self.engine {
            Engine::Word(norm) => {
                let words = normalize_words(text, norm);
                let unknown = words.iter().filter(|w| self.vocab.id(w).is_none()).cloned().collect();
                Ok((words, unknown))
            }
            Engine::Bpe(t) => bpe::split(t, text),
        }
    }

    /// Tokens, ids (ending with EOS) and unknowns of one raw text.
    pub fn tokenize(&self, text: &str) -> Result<Tokenized> {
        let (tokens, unknown) = self.split(text)?;
        let ids = self.vocab.encode(&tokens);
        let dropped = match &self.engine {
            Engine::Word(norm) => {
                let mut dropped: Vec<String> = Vec::new();
                for c in text.chars().filter(|c| !c.is_ascii() && !c.is_whitespace()) {
                    let one = c.to_string();
                    if normalize_words(&one, norm).is_empty() && !dropped.contains(&one) {
                        dropped.push(one);
                    }
                }
                dropped
            }
            Engine::Bpe(_) => Vec::new(),
        };
        Ok(Tokenized { tokens, ids, unknown, dropped })
    }

    /// The tokens of `ids` up to the first EOS.
    pub fn tokens(&self, ids: &[u32]) -> Vec<String> {
        self.vocab.decode(ids)
    }

    /// Text of `ids` up to the first EOS: words joined by spaces, or BPE pieces decoded
    /// (detokenized, special tokens dropped).
    pub fn detokenize(&self, ids: &[u32]) -> String {
        // Up to EOS; PAD and SOS are never text (a wide beam over a small vocabulary can
        // pick them).
        let ids: Vec<u32> = ids.iter().copied().take_while(|&i| i != EOS).filter(|&i| i != PAD && i != SOS).collect();
        match &self.engine {
            Engine::Word(_) => self.vocab.decode(&ids).join(" "),
            Engine::Bpe(t) => bpe::join(t, &ids),
        }
    }

    /// For each token, the index of the word it belongs to: every token is a word for the
    /// word tokenizer; a BPE piece starting with `▁` starts a new word.
    pub fn word_index(&self, tokens: &[String]) -> Vec<usize> {
        let mut word = 0;
        tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let starts = match self.engine {
                    Engine::Word(_) => true,
                    Engine::Bpe(_) => t.starts_with(bpe::WORD_START),
                };
                if i > 0 && starts {
                    word += 1;
                }
                word
            })
            .collect()
    }
}

/// File names of a tokenizer pair saved in a folder (a run's `tokenizer/`, or what
/// `s2s tokenizer train --out DIR` writes for separate vocabularies).
pub const PAIR_FILES: [&str; 2] = ["source.json", "target.json"];

/// Reads BPE tokenizers from `path`: one `tokenizer.json` file serves both sides; a folder
/// holds [`PAIR_FILES`]. A joint vocabulary needs the two to be the same tokenizer.
pub fn load_pair(path: &Path, joint: bool, norm: Normalization) -> Result<(Tokenizer, Tokenizer)> {
    if path.is_dir() {
        let [s, t] = PAIR_FILES.map(|f| path.join(f));
        let (s, t) = (Tokenizer::load(TokenizerKind::Bpe, norm, &s)?, Tokenizer::load(TokenizerKind::Bpe, norm, &t)?);
        if joint && s.to_json()? != t.to_json()? {
            return Err(DataError::Tokenizer {
                path: Some(path.to_path_buf()),
                message: "data.joint_vocab = true, but source.json and target.json differ".into(),
            });
        }
        return Ok((s, t));
    }
    let one = Tokenizer::load(TokenizerKind::Bpe, norm, path)?;
    Ok((one.clone(), one))
}

/// Writes a tokenizer pair to `path`: one file when both sides share one tokenizer, else
/// a folder of [`PAIR_FILES`]. Returns the files written.
pub fn save_pair(source: &Tokenizer, target: &Tokenizer, path: &Path) -> Result<Vec<std::path::PathBuf>> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| DataError::Io { path: p, source }
    };
    if source.to_json()? == target.to_json()? && !path.is_dir() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        source.save(path)?;
        return Ok(vec![path.to_path_buf()]);
    }
    std::fs::create_dir_all(path).map_err(io(path))?;
    let files = PAIR_FILES.map(|f| path.join(f));
    source.save(&files[0])?;
    target.save(&files[1])?;
    Ok(files.to_vec())
}

#[cfg(test)]
mod tests;
