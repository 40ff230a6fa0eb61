//! Byte-pair-encoding subwords through the Hugging Face `tokenizers` crate, saved in its
//! `tokenizer.json` format so that Python's `tokenizers.Tokenizer.from_file` loads them.
//!
//! The pipeline is SentencePiece's as JoeyNMT uses it: Unicode NFC (plus lowercasing or
//! accent stripping when the config asks), whitespace marked by `▁` at each word start
//! (Metaspace), BPE pieces, and the Metaspace decoder to turn pieces back into text.
//! Characters never seen in training become `<unk>` (consecutive ones fused).
//!
//! Determinism: the crate's BPE trainer is deterministic as long as no continuing-subword
//! prefix or end-of-word suffix is used (huggingface/tokenizers #1794: those tokens get ids
//! in hash-map order). The base alphabet is sorted and merges break count ties by pair
//! ids, so the same text gives the same file; a test trains in two processes and compares
//! the bytes.

use std::path::Path;

use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, Replace, Sequence, Strip, StripAccents, NFC, NFD};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, NormalizerWrapper, Tokenizer as HfTokenizer};

use crate::error::{DataError, Result};
use crate::normalize::Normalization;
use crate::vocab::{EOS, PAD, SOS, UNK};

/// The special tokens of a BPE tokenizer, at the ids the model uses (SOS, EOS, PAD, UNK).
pub const BPE_SPECIALS: [&str; 4] = ["<s>", "</s>", "<pad>", "<unk>"];

/// The word-start mark of SentencePiece and Metaspace.
pub const WORD_START: char = '\u{2581}';

/// A tokenizer with the pipeline above and an empty model, ready to train.
fn pipeline(norm: &Normalization) -> Result<HfTokenizer> {
    let model =
        BPE::builder().unk_token(BPE_SPECIALS[UNK as usize].to_string()).fuse_unk(true).build().map_err(hf_error)?;
    let mut tok = HfTokenizer::new(model);
    // Whitespace as normalize_text leaves it (trimmed, runs collapsed), so that Python's
    // `encode` of raw text gives our pieces.
    let mut steps: Vec<NormalizerWrapper> = vec![
        Strip::new(true, true).into(),
        Replace::new(ReplacePattern::Regex(r"\s+".into()), " ").map_err(hf_error)?.into(),
    ];
    if norm.ascii {
        steps.push(NFD.into());
        steps.push(StripAccents.into());
    }
    steps.push(NFC.into());
    if norm.lowercase {
        steps.push(Lowercase.into());
    }
    tok.with_normalizer(Some(Sequence::new(steps))).map_err(hf_error)?;
    let meta = Metaspace::new(WORD_START, PrependScheme::Always, true);
    tok.with_pre_tokenizer(Some(meta.clone()));
    tok.with_decoder(Some(meta));
    Ok(tok)
}

/// Learns a BPE tokenizer of at most `vocab_size` entries (specials included) from
/// `texts`; pairs seen fewer than `min_freq` times are not merged.
pub fn train<'a>(
    texts: impl Iterator<Item = &'a str> + Send,
    norm: &Normalization,
    vocab_size: usize,
    min_freq: usize,
) -> Result<HfTokenizer> {
    let mut tok = pipeline(norm)?;
    let specials = BPE_SPECIALS.iter().map(|s| AddedToken::from(*s, true)).collect();
    let trainer = BpeTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(min_freq as u64)
        .special_tokens(specials)
        .show_progress(false)
        .build();
    let mut trainer = tokenizers::models::TrainerWrapper::BpeTrainer(trainer);
    tok.train(&mut trainer, texts).map_err(hf_error)?;
    let size = tok.get_vocab_size(true);
    if size > vocab_size {
        return Err(DataError::InvalidConfig {
            key: "max_vocab_size",
            message: format!(
                "{vocab_size} is smaller than the training text's alphabet: {} characters plus 4 special \
                 tokens need at least {size}",
                size - BPE_SPECIALS.len()
            ),
        });
    }
    Ok(tok)
}

/// Reads a `tokenizer.json` and checks that it is a BPE tokenizer with our special tokens
/// at our ids.
pub fn load(path: &Path) -> Result<HfTokenizer> {
    let bad = |message: String| DataError::Tokenizer { path: Some(path.to_path_buf()), message };
    let text = crate::files::read_text(path, crate::files::MAX_SMALL_FILE_BYTES)
        .map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    // Well-formed JSON first: the tokenizers crate panics on some malformed files (a
    // truncated `decoder`) instead of returning its error.
    serde_json::from_str::<serde::de::IgnoredAny>(&text).map_err(|e| bad(format!("not a tokenizer.json: {e}")))?;
    let parsed = std::panic::catch_unwind(|| text.parse::<HfTokenizer>());
    let tok = match parsed {
        Ok(parsed) => parsed.map_err(|e| bad(format!("not a tokenizer.json: {e}")))?,
        Err(_) => return Err(bad("not a tokenizer.json this version reads (its reader failed)".into())),
    };
    check_specials(&tok).map_err(bad)?;
    Ok(tok)
}

/// Our special tokens at our ids, and a BPE model.
fn check_specials(tok: &HfTokenizer) -> std::result::Result<(), String> {
    if !matches!(tok.get_model(), tokenizers::ModelWrapper::BPE(_)) {
        return Err("not a BPE model".into());
    }
    for (id, name) in [(SOS, "SOS"), (EOS, "EOS"), (PAD, "PAD"), (UNK, "UNK")] {
        let want = BPE_SPECIALS[id as usize];
        match tok.id_to_token(id) {
            Some(t) if t == want => {}
            got => {
                return Err(format!(
                    "special tokens do not match: id {id} ({name}) must be {want:?}, found {}",
                    got.map_or("nothing".to_string(), |t| format!("{t:?}"))
                ))
            }
        }
    }
    Ok(())
}

/// The tokenizer as `tokenizer.json` text (pretty, as Python's `save` writes it).
pub fn to_json(tok: &HfTokenizer) -> Result<String> {
    tok.to_string(true).map_err(hf_error)
}

/// The vocabulary in id order.
pub fn tokens(tok: &HfTokenizer) -> Vec<String> {
    let vocab = tok.get_vocab(true);
    let mut tokens = vec![String::new(); vocab.len()];
    for (t, id) in vocab {
        if let Some(slot) = tokens.get_mut(id as usize) {
            *slot = t;
        }
    }
    tokens
}

/// Pieces of one text, and the characters that became `<unk>`.
///
/// With the pipeline above (checked by [`fast_path_applies`]), this normalizes the text
/// with the file's normalizer, splits it at spaces and runs the BPE model on each `▁word`
/// directly: the pieces `encode` gives (a test compares them), without building an
/// `Encoding` per sentence, which made loading a million pairs several times slower.
pub fn split(tok: &HfTokenizer, text: &str) -> Result<(Vec<String>, Vec<String>)> {
    if let (true, tokenizers::ModelWrapper::BPE(bpe)) = (fast_path_applies(tok), tok.get_model()) {
        let mut normalized = tokenizers::NormalizedString::from(text);
        if let Some(n) = tok.get_normalizer() {
            tokenizers::Normalizer::normalize(n, &mut normalized).map_err(hf_error)?;
        }
        let clean = normalized.get();
        let plain = !clean.starts_with(' ') && !clean.ends_with(' ') && !clean.contains("  ");
        if plain && !BPE_SPECIALS.iter().any(|sp| clean.contains(sp)) {
            let (mut pieces, mut unknown) = (Vec::new(), Vec::new());
            let mut word = String::new();
            for w in clean.split(' ').filter(|w| !w.is_empty()) {
                word.clear();
                word.push(WORD_START);
                word.push_str(w);
                for t in tokenizers::Model::tokenize(bpe, &word).map_err(hf_error)? {
                    if t.id == UNK {
                        unknown.push(word.get(t.offsets.0..t.offsets.1).unwrap_or("?").to_string());
                    }
                    pieces.push(t.value);
                }
            }
            return Ok((pieces, unknown));
        }
    }
    let enc = tok.encode(text, false).map_err(hf_error)?;
    let unknown = enc
        .get_ids()
        .iter()
        .zip(enc.get_offsets())
        .filter(|(&id, _)| id == UNK)
        .map(|(_, &(a, b))| text.get(a..b).unwrap_or("?").to_string())
        .collect();
    Ok((enc.get_tokens().to_vec(), unknown))
}

pub(crate) fn hf_error(e: tokenizers::Error) -> DataError {
    DataError::Tokenizer { path: None, message: e.to_string() }
}

/// Whether the tokenizer splits as ours do: a Metaspace pre-tokenizer with `▁`, splitting,
/// prepending always; no added tokens besides the specials; no post-processor.
pub fn fast_path_applies(tok: &HfTokenizer) -> bool {
    let meta = match tok.get_pre_tokenizer() {
        Some(tokenizers::PreTokenizerWrapper::Metaspace(m)) => m,
        _ => return false,
    };
    meta.get_replacement() == WORD_START
        && meta.get_split()
        && meta.get_prepend_scheme() == PrependScheme::Always
        && tok.get_post_processor().is_none()
        && tok.get_added_tokens_decoder().len() == BPE_SPECIALS.len()
}

/// Text from ids (specials dropped), as the Metaspace decoder joins pieces.
pub fn join(tok: &HfTokenizer, ids: &[u32]) -> String {
    tok.decode(ids, true).unwrap_or_default()
}
