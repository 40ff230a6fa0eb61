//! Token vocabularies with the special tokens the model needs.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// Special token ids, the same as `torch_ref.py`'s: SOS=0 EOS=1 PAD=2 UNK=3.
pub const SOS: u32 = 0;
pub const EOS: u32 = 1;
pub const PAD: u32 = 2;
pub const UNK: u32 = 3;
pub const SPECIALS: [&str; 4] = ["SOS", "EOS", "PAD", "UNK"];

/// Words in order of first appearance in the train split, after the specials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocab {
    tokens: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

impl Vocab {
    /// Builds a vocabulary from training sentences; words with fewer than `min_freq`
    /// occurrences are left out, and at most `max_size` entries (specials included)
    /// are kept, the most frequent first (0 = no limit).
    pub fn build<'a>(sentences: impl IntoIterator<Item = &'a [String]>, min_freq: usize, max_size: usize) -> Self {
        let mut order: Vec<&str> = Vec::new();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for s in sentences {
            for w in s {
                let c = counts.entry(w.as_str()).or_insert(0);
                if *c == 0 {
                    order.push(w.as_str());
                }
                *c += 1;
            }
        }
        let mut kept: Vec<(usize, &str)> =
            order.iter().enumerate().filter(|(_, w)| counts[*w] >= min_freq).map(|(i, w)| (i, *w)).collect();
        if max_size > 0 && kept.len() + SPECIALS.len() > max_size {
            // Most frequent first, ties by first appearance; then back to appearance order.
            kept.sort_by(|a, b| counts[b.1].cmp(&counts[a.1]).then(a.0.cmp(&b.0)));
            kept.truncate(max_size.saturating_sub(SPECIALS.len()));
            kept.sort_by_key(|k| k.0);
        }
        let tokens =
            SPECIALS.iter().map(|s| s.to_string()).chain(kept.into_iter().map(|(_, w)| w.to_string())).collect();
        Self::from_tokens(tokens)
    }

    /// A vocabulary of `tokens` in id order.
    pub fn from_tokens(tokens: Vec<String>) -> Self {
        let index = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        Self { tokens, index }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// Ids of the words (strings or [`Tokens`](crate::tokenizer::Tokens)) followed by EOS; unknown words become UNK.
    pub fn encode<T: Encodable + ?Sized>(&self, words: &T) -> Vec<u32> {
        words.encode_in(self)
    }

    pub fn token(&self, id: u32) -> &str {
        self.tokens.get(id as usize).map_or("UNK", String::as_str)
    }

    /// Words up to the first EOS.
    pub fn decode(&self, ids: &[u32]) -> Vec<String> {
        ids.iter().take_while(|&&i| i != EOS).map(|&i| self.token(i).to_string()).collect()
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The tokens in id order as a JSON list (what [`Self::save`] writes).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(&self.tokens)
            .map_err(|e| DataError::Tokenizer { path: None, message: e.to_string() })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self.to_json()?;
        std::fs::write(path, json).map_err(|source| DataError::Io { path: path.to_path_buf(), source })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let io = |source| DataError::Io { path: path.to_path_buf(), source };
        let text = crate::files::read_text(path, crate::files::MAX_SMALL_FILE_BYTES).map_err(io)?;
        let tokens: Vec<String> =
            serde_json::from_str(&text).map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        if tokens.len() < SPECIALS.len() || tokens[..SPECIALS.len()] != SPECIALS {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "vocabulary does not start with SOS, EOS, PAD, UNK",
            )));
        }
        Ok(Self::from_tokens(tokens))
    }
}

/// What [`Vocab::encode`] turns into ids: tokens as strings, or `Tokens`.
pub trait Encodable {
    /// The ids of the tokens in `vocab` followed by EOS; unknown tokens become UNK.
    fn encode_in(&self, vocab: &Vocab) -> Vec<u32>;
}

impl Encodable for [String] {
    fn encode_in(&self, vocab: &Vocab) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.len() + 1);
        ids.extend(self.iter().map(|w| vocab.id(w).unwrap_or(UNK)));
        ids.push(EOS);
        ids
    }
}

impl Encodable for Vec<String> {
    fn encode_in(&self, vocab: &Vocab) -> Vec<u32> {
        self.as_slice().encode_in(vocab)
    }
}

impl<const N: usize> Encodable for [String; N] {
    fn encode_in(&self, vocab: &Vocab) -> Vec<u32> {
        self.as_slice().encode_in(vocab)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn appearance_order_and_specials() {
        let sents = [words("a b a c"), words("c d")];
        let v = Vocab::build(sents.iter().map(Vec::as_slice), 1, 0);
        assert_eq!(v.tokens()[4..], ["a", "b", "c", "d"]);
        assert_eq!(v.encode(&words("a zz")), vec![4, UNK, EOS]);
        assert_eq!(v.decode(&[4, 5, EOS, 6]), ["a", "b"]);
    }

    #[test]
    fn min_freq_and_max_size() {
        let sents = [words("a b a c c c d")];
        let v = Vocab::build(sents.iter().map(Vec::as_slice), 2, 0);
        assert_eq!(v.tokens()[4..], ["a", "c"]);
        let v = Vocab::build(sents.iter().map(Vec::as_slice), 1, 5);
        assert_eq!(v.tokens()[4..], ["c"]);
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = Vocab::build([words("x y")].iter().map(Vec::as_slice), 1, 0);
        let p = dir.path().join("v.json");
        v.save(&p).expect("save");
        assert_eq!(Vocab::load(&p).expect("load"), v);
    }
}
