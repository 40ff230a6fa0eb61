//! Tokenizing a corpus with a per-word cache: each distinct word is normalized and cut
//! into BPE pieces once, as BPE implementations keep a word cache (the `tokenizers`
//! crate's own holds 10,000 words behind a lock and still builds a `String` per piece).
//! Natural text is Zipfian, so a few thousand frequent words make up most of its tokens
//! whatever the corpus; nothing here depends on sentences repeating.
//!
//! Cutting a text word by word gives [`Tokenizer::split`]'s pieces only when normalizing
//! each word alone gives the pieces of normalizing the whole text and splitting it at
//! spaces. That holds when the text's words are separated by single spaces and contain
//! no other whitespace, and the tokenizer's normalizer is made only of steps that act on
//! each word by itself ([`word_local`]): Unicode NFC/NFD (a space is a starter that
//! composes with nothing, so it bounds every reordering and composition), accent
//! stripping and lowercasing (character by character), and the whitespace trimming and
//! collapsing that leave such a text as it is. Any other text, any word that normalizes
//! to nothing, to something with a space or to a special token, and any other normalizer
//! go through [`Tokenizer::split`] as before.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use tokenizers::{NormalizedString, Normalizer, NormalizerWrapper};

use super::bpe::{fast_path_applies, hf_error, BPE_SPECIALS, WORD_START};
use super::tokens::Tokens;
use super::{Engine, Tokenizer};
use crate::error::Result;
use crate::vocab::UNK;

/// Words a [`WordCache`] remembers at most; later new words are cut without being kept,
/// so that memory stays bounded on any corpus.
pub const MAX_CACHED_WORDS: usize = 1 << 18;

/// One tokenizer's cut of each word seen so far, for tokenizing many texts.
#[derive(Debug)]
pub struct WordCache<'a> {
    tokenizer: &'a Tokenizer,
    /// Whether the tokenizer allows cutting word by word at all.
    applies: bool,
    /// A word's piece ids, or `None` where the word needs the whole-text path.
    words: HashMap<String, Option<Box<[u32]>>, BuildHasherDefault<WordHasher>>,
    /// Scratch space for one word with its word-start mark.
    word: String,
    limit: usize,
}

impl<'a> WordCache<'a> {
    /// An empty cache for `tokenizer`.
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        Self::with_limit(tokenizer, MAX_CACHED_WORDS)
    }

    /// An empty cache that keeps at most `limit` words.
    pub fn with_limit(tokenizer: &'a Tokenizer, limit: usize) -> Self {
        let applies = match &tokenizer.engine {
            Engine::Bpe(t) => fast_path_applies(t) && t.get_normalizer().is_none_or(word_local),
            Engine::Word(_) => false,
        };
        Self { tokenizer, applies, words: HashMap::default(), word: String::new(), limit }
    }

    /// Whether this tokenizer's texts are cut word by word (else each goes through
    /// [`Tokenizer::split`]).
    pub fn cuts_word_by_word(&self) -> bool {
        self.applies
    }

    /// The words kept so far.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The tokens of one raw text (no EOS): piece ids for BPE, the same as
    /// [`Tokenizer::split`]'s pieces looked up in the vocabulary; words for the word
    /// tokenizer.
    pub fn tokens(&mut self, text: &str) -> Result<Tokens> {
        if let Engine::Word(_) = self.tokenizer.engine {
            return Ok(Tokens::Words(self.tokenizer.split(text)?.0));
        }
        if self.applies && plain(text) {
            let mut ids = Vec::with_capacity(text.len() / 2 + 1);
            let mut whole = true;
            for w in text.split(' ') {
                if !self.push_word(w, &mut ids)? {
                    whole = false;
                    break;
                }
            }
            if whole {
                ids.shrink_to_fit();
                return Ok(Tokens::Ids(ids));
            }
        }
        let vocab = self.tokenizer.vocab();
        let pieces = self.tokenizer.split(text)?.0;
        Ok(Tokens::Ids(pieces.iter().map(|p| vocab.id(p).unwrap_or(UNK)).collect()))
    }

    /// Appends the piece ids of one word (no spaces) to `ids`, from the cache or cut now;
    /// false where the word needs the whole-text path.
    fn push_word(&mut self, w: &str, ids: &mut Vec<u32>) -> Result<bool> {
        if let Some(entry) = self.words.get(w) {
            return Ok(entry.as_deref().map(|cut| ids.extend_from_slice(cut)).is_some());
        }
        let cut = self.cut(w)?;
        let found = cut.as_deref().map(|c| ids.extend_from_slice(c)).is_some();
        if self.words.len() < self.limit {
            self.words.insert(w.to_string(), cut);
        }
        Ok(found)
    }

    /// One word normalized by the tokenizer's normalizer and cut by its BPE model, as
    /// [`Tokenizer::split`] cuts each word of a normalized text; `None` where the word
    /// normalizes to nothing, to more than one word, or to text holding a special token.
    fn cut(&mut self, w: &str) -> Result<Option<Box<[u32]>>> {
        let Engine::Bpe(t) = &self.tokenizer.engine else { return Ok(None) };
        let tokenizers::ModelWrapper::BPE(bpe) = t.get_model() else { return Ok(None) };
        let mut normalized = NormalizedString::from(w);
        if let Some(n) = t.get_normalizer() {
            n.normalize(&mut normalized).map_err(hf_error)?;
        }
        let clean = normalized.get();
        if clean.is_empty() || clean.contains(' ') || BPE_SPECIALS.iter().any(|sp| clean.contains(sp)) {
            return Ok(None);
        }
        self.word.clear();
        self.word.push(WORD_START);
        self.word.push_str(clean);
        let vocab = self.tokenizer.vocab();
        let pieces = tokenizers::Model::tokenize(bpe, &self.word).map_err(hf_error)?;
        Ok(Some(pieces.iter().map(|p| vocab.id(&p.value).unwrap_or(UNK)).collect()))
    }
}

/// Whether every step of `n` acts on each space-separated word by itself (see the module
/// documentation).
pub fn word_local(n: &NormalizerWrapper) -> bool {
    match n {
        NormalizerWrapper::NFC(_)
        | NormalizerWrapper::NFD(_)
        | NormalizerWrapper::StripAccents(_)
        | NormalizerWrapper::Lowercase(_)
        | NormalizerWrapper::StripNormalizer(_) => true,
        NormalizerWrapper::Replace(r) => {
            serde_json::to_value(r).ok()
                == Some(serde_json::json!({"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "}))
        }
        NormalizerWrapper::Sequence(s) => s.as_ref().iter().all(word_local),
        _ => false,
    }
}

/// Words separated by single spaces, with no other whitespace anywhere.
fn plain(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.contains("  ")
        && text.chars().all(|c| c == ' ' || !(c.is_whitespace() || c.is_control()))
}

/// FxHash (rustc's): a multiply-rotate hash, several times faster than the default SipHash
/// on short words. The words are the corpus's own, so flooding resistance buys nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
