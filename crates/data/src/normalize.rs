//! Sentence normalization, each step switchable from the config.

use unicode_normalization::{char::is_combining_mark, is_nfc_quick, IsNormalized, UnicodeNormalization};

use serde::{Deserialize, Serialize};

/// The tutorial's English prefixes (`eng_prefixes`), after normalization.
pub const ENGLISH_PREFIXES: &[&str] = &[
    "i am ", "i m ", "he is", "he s ", "she is", "she s ", "you are", "you re ", "we are", "we re ", "they are",
    "they re ",
];

/// The normalization steps, resolved from `[data]` (see [`crate::DataConfig::normalization`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Normalization {
    pub ascii: bool,
    pub lowercase: bool,
    pub separate_punctuation: bool,
    pub letters_only: bool,
}

/// One text with case and accents handled as `norm` says, Unicode NFC, and whitespace
/// runs collapsed to one space: what a BPE tokenizer reads and what references are
/// scored against.
///
/// ASCII text skips the Unicode steps (it is its own NFD and NFC, with no accents), and
/// text that passes the NFC quick check is not recomposed.
pub fn normalize_text(text: &str, norm: &Normalization) -> String {
    let mut s = String::with_capacity(text.len());
    for w in text.split_whitespace() {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(w);
    }
    if !s.is_ascii() {
        if norm.ascii {
            s = s.nfd().filter(|c| !is_combining_mark(*c)).collect();
        }
        if is_nfc_quick(s.chars()) != IsNormalized::Yes {
            s = s.nfc().collect();
        }
    }
    if norm.lowercase {
        if s.is_ascii() {
            s.make_ascii_lowercase();
        } else {
            s = s.to_lowercase();
        }
    }
    s
}

/// Normalizes one sentence as `norm` says and returns its words.
pub fn normalize_words(text: &str, norm: &Normalization) -> Vec<String> {
    let mut s: String = text.trim().to_string();
    if norm.lowercase {
        s = s.to_lowercase();
    }
    if norm.ascii {
        s = s.nfd().filter(|c| !is_combining_mark(*c)).collect();
    }
    if norm.separate_punctuation {
        let mut out = String::with_capacity(s.len() + 4);
        for c in s.chars() {
            if matches!(c, '.' | '!' | '?') {
                out.push(' ');
            }
            out.push(c);
        }
        s = out;
    }
    if norm.letters_only {
        s = s.chars().map(|c| if c.is_ascii_alphabetic() || matches!(c, '.' | '!' | '?') { c } else { ' ' }).collect();
    }
    s.split_whitespace().map(str::to_string).collect()
}

/// Whether a normalized English sentence passes the tutorial's prefix filter.
pub fn has_english_prefix(tokens: &[String]) -> bool {
    let joined = tokens.join(" ") + " ";
    ENGLISH_PREFIXES.iter().any(|p| joined.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataConfig;

    #[test]
    fn tutorial_normalization() {
        let cfg = DataConfig::default().normalization();
        // torch_ref.normalize_words("Va !") == "va !" ; normalize_words("Ça m'a plu.") == "ca m a plu ."
        assert_eq!(normalize_words("Va !", &cfg), ["va", "!"]);
        assert_eq!(normalize_words("Ça m'a plu.", &cfg), ["ca", "m", "a", "plu", "."]);
        assert_eq!(normalize_words("  Élève\u{a0}!", &cfg), ["eleve", "!"]);
    }

    #[test]
    fn steps_can_be_switched_off() {
        let cfg =
            DataConfig { lowercase: Some(false), ascii: Some(false), letters_only: Some(false), ..Default::default() }
                .normalization();
        assert_eq!(normalize_words("Été, oui!", &cfg), ["Été,", "oui", "!"]);
    }

    #[test]
    fn prefix_filter() {
        let cfg = DataConfig::default().normalization();
        assert!(has_english_prefix(&normalize_words("I'm tired.", &cfg)));
        assert!(has_english_prefix(&normalize_words("He is tall.", &cfg)));
        assert!(!has_english_prefix(&normalize_words("Go away.", &cfg)));
    }

    #[test]
    fn subword_text_keeps_case_and_accents_in_nfc() {
        let cfg = DataConfig { tokenizer: crate::TokenizerKind::Bpe, ..Default::default() }.normalization();
        // "e" + combining acute (NFD) becomes one "é" (NFC); whitespace runs collapse.
        assert_eq!(normalize_text("  Un e\u{301}le\u{300}ve \t arrive. ", &cfg), "Un élève arrive.");
        let lower = Normalization { lowercase: true, ascii: true, ..cfg };
        assert_eq!(normalize_text("Ça VA", &lower), "ca va");
    }

    #[test]
    fn fast_paths_give_the_full_normalization() {
        // The steps as normalize_text applied them before its ASCII and NFC quick-check paths.
        fn full(text: &str, norm: &Normalization) -> String {
            let mut s: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if norm.ascii {
                s = s.nfd().filter(|c| !is_combining_mark(*c)).collect();
            }
            s = s.nfc().collect();
            if norm.lowercase {
                s = s.to_lowercase();
            }
            s
        }
        let texts = [
            "A man IN a Blue shirt.",
            "  two\t spaces \n ",
            "",
            "Un e\u{301}le\u{300}ve (NFD) et un élève (NFC)",
            "ΣΟΦΊΑ İstanbul ǅ ﬁ Å Å 한국어 \u{1100}\u{1161}",
            "a\u{0323}\u{0307} q\u{0307}\u{0323}",
        ];
        for ascii in [false, true] {
            for lowercase in [false, true] {
                let norm = Normalization { ascii, lowercase, separate_punctuation: false, letters_only: false };
                for t in texts {
                    assert_eq!(normalize_text(t, &norm), full(t, &norm), "{t:?} {norm:?}");
                }
            }
        }
    }
}
