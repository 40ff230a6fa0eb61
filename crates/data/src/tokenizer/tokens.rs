//! A sentence's tokens as a loaded corpus holds them, and what a [`Vocab`] can encode.

use crate::vocab::{Encodable, Vocab, EOS, UNK};

/// One side of a sentence pair, tokenized: words as strings (the word pipeline, whose
/// vocabulary is built from the words afterwards), or the ids of BPE pieces in the
/// vocabulary of the tokenizer that cut them (4 bytes a piece instead of a `String`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tokens {
    Words(Vec<String>),
    Ids(Vec<u32>),
}

impl Tokens {
    /// The number of tokens (EOS not counted).
    pub fn len(&self) -> usize {
        match self {
            Tokens::Words(w) => w.len(),
            Tokens::Ids(i) => i.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The words of the word pipeline; empty for piece ids.
    pub fn words(&self) -> &[String] {
        match self {
            Tokens::Words(w) => w,
            Tokens::Ids(_) => &[],
        }
    }

    /// The tokens as text: the words, or the pieces of the ids in `vocab` (the vocabulary
    /// of the tokenizer that made them).
    pub fn pieces<'a>(&'a self, vocab: &'a Vocab) -> Vec<&'a str> {
        match self {
            Tokens::Words(w) => w.iter().map(String::as_str).collect(),
            Tokens::Ids(i) => i.iter().map(|&id| vocab.token(id)).collect(),
        }
    }
}

impl From<Vec<String>> for Tokens {
    fn from(words: Vec<String>) -> Self {
        Tokens::Words(words)
    }
}

impl<const N: usize> PartialEq<[&str; N]> for Tokens {
    fn eq(&self, other: &[&str; N]) -> bool {
        match self {
            Tokens::Words(w) => w.len() == N && w.iter().zip(other).all(|(a, b)| a == b),
            Tokens::Ids(_) => false,
        }
    }
}

impl Encodable for Tokens {
    /// Words are looked up; piece ids are copied (any beyond `vocab` become UNK).
    fn encode_in(&self, vocab: &Vocab) -> Vec<u32> {
        match self {
            Tokens::Words(w) => w.encode_in(vocab),
            Tokens::Ids(i) => {
                let n = vocab.len() as u64;
                let mut ids = Vec::with_capacity(i.len() + 1);
                ids.extend(i.iter().map(|&id| if u64::from(id) < n { id } else { UNK }));
                ids.push(EOS);
                ids
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_words_encode_alike() {
        let vocab = Vocab::from_tokens(["SOS", "EOS", "PAD", "UNK", "▁a", "b"].map(String::from).to_vec());
        let words = vec!["▁a".to_string(), "zz".into(), "b".into()];
        assert_eq!(vocab.encode(&words), vec![4, UNK, 5, EOS]);
        assert_eq!(vocab.encode(&Tokens::Words(words.clone())), vec![4, UNK, 5, EOS]);
        let ids = Tokens::Ids(vec![4, UNK, 5]);
        assert_eq!(vocab.encode(&ids), vec![4, UNK, 5, EOS]);
        assert_eq!(ids.pieces(&vocab), ["▁a", "UNK", "b"]);
        assert_eq!(vocab.encode(&Tokens::Ids(vec![9])), vec![UNK, EOS]);
        assert_eq!((ids.len(), ids.words().len()), (3, 0));
        assert_eq!(Tokens::from(words), ["▁a", "zz", "b"]);
    }
}
