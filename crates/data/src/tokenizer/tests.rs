use std::path::Path;

use super::*;
use crate::normalize::Normalization;
use crate::vocab::{PAD, SOS, UNK};

const BPE_NORM: Normalization =
    Normalization { ascii: false, lowercase: false, separate_punctuation: false, letters_only: false };

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    tokens: Vec<String>,
    ids: Vec<u32>,
    decoded: String,
}

#[derive(serde::Deserialize)]
struct Cases {
    train: Vec<String>,
    vocab_size: usize,
    cases: Vec<Case>,
}

fn cases() -> Cases {
    let text = std::fs::read_to_string(fixture("python_bpe_cases.json")).expect("fixture");
    serde_json::from_str(&text).expect("fixture parses")
}

#[test]
fn python_tokenizer_round_trip() {
    // Made by scripts/tokenizer_fixture.py with Python's tokenizers 0.23.2.
    let c = cases();
    let python = Tokenizer::load(TokenizerKind::Bpe, BPE_NORM, &fixture("python_bpe.json")).expect("loads");
    let ours = Tokenizer::learn_bpe(c.train.iter().map(String::as_str), &BPE_NORM, c.vocab_size, 1).expect("learns");
    for tok in [&python, &ours] {
        for case in &c.cases {
            let t = tok.tokenize(&case.text).expect("encodes");
            assert_eq!(t.tokens, case.tokens, "{:?}", case.text);
            assert_eq!(t.ids[..t.ids.len() - 1], case.ids[..], "{:?}", case.text);
            assert_eq!(*t.ids.last().expect("EOS"), EOS);
            assert_eq!(tok.detokenize(&t.ids), case.decoded, "{:?}", case.text);
        }
    }
    // The same text and settings learn the same file as Python.
    let py_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("python_bpe.json")).expect("read")).expect("json");
    let our_json: serde_json::Value = serde_json::from_str(&ours.to_json().expect("json")).expect("json");
    assert_eq!(our_json["model"]["vocab"], py_json["model"]["vocab"]);
    assert_eq!(our_json["model"]["merges"], py_json["model"]["merges"]);
}

#[test]
fn unknown_characters_become_unk_and_are_reported() {
    let c = cases();
    let tok = Tokenizer::learn_bpe(c.train.iter().map(String::as_str), &BPE_NORM, c.vocab_size, 1).expect("learns");
    let t = tok.tokenize("Ein Hund 🐕 läuft im 雪.\u{7}").expect("never fails");
    assert_eq!(t.unknown, ["🐕", "ä", "雪", "\u{7}"]);
    assert_eq!(t.ids.iter().filter(|&&i| i == UNK).count(), 4);
}

#[test]
fn learning_is_deterministic_and_specials_sit_at_the_model_ids() {
    let c = cases();
    let learn = || Tokenizer::learn_bpe(c.train.iter().map(String::as_str), &BPE_NORM, 100, 1).expect("learns");
    let (a, b) = (learn(), learn());
    assert_eq!(a.to_json().expect("json"), b.to_json().expect("json"));
    assert_eq!(a.vocab().len(), 100);
    for (id, name) in [(SOS, "<s>"), (EOS, "</s>"), (PAD, "<pad>"), (UNK, "<unk>")] {
        assert_eq!(a.vocab().token(id), name);
    }
}

#[test]
fn word_index_groups_pieces_into_words() {
    let c = cases();
    let tok = Tokenizer::learn_bpe(c.train.iter().map(String::as_str), &BPE_NORM, 120, 1).expect("learns");
    let t = tok.tokenize("Une élève arrive.").expect("encodes");
    // ▁ Un e | ▁é l è v e | ▁ar r i v e.
    assert_eq!(tok.word_index(&t.tokens), [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
    let words = Tokenizer::word(BPE_NORM, Vocab::from_tokens(vec![]));
    assert_eq!(words.word_index(&["a".into(), "b".into()]), [0, 1]);
}

#[test]
fn bad_tokenizer_files_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.json");
    let err = Tokenizer::load(TokenizerKind::Bpe, BPE_NORM, &missing).expect_err("missing").to_string();
    assert!(err.contains("missing.json"), "{err}");

    let corrupt = dir.path().join("corrupt.json");
    std::fs::write(&corrupt, "{\"version\": ").expect("write");
    let err = Tokenizer::load(TokenizerKind::Bpe, BPE_NORM, &corrupt).expect_err("corrupt").to_string();
    assert!(err.contains("corrupt.json") && err.contains("not a tokenizer.json"), "{err}");

    // Python's file with <s> and </s> swapped: the ids no longer match the model's.
    let text = std::fs::read_to_string(fixture("python_bpe.json")).expect("read");
    let swapped = text
        .replace("\"<s>\": 0", "\"<tmp>\": 0")
        .replace("\"</s>\": 1", "\"<s>\": 1")
        .replace("\"<tmp>\": 0", "\"</s>\": 0");
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, swapped).expect("write");
    let err = Tokenizer::load(TokenizerKind::Bpe, BPE_NORM, &wrong).expect_err("specials").to_string();
    assert!(err.contains("wrong.json") && err.contains("special tokens do not match"), "{err}");

    // A vocabulary smaller than the alphabet.
    let err = Tokenizer::learn_bpe(["abcdefghij"].into_iter(), &BPE_NORM, 8, 1).expect_err("too small").to_string();
    assert!(err.contains("max_vocab_size") && err.contains("alphabet"), "{err}");
}

#[test]
fn pairs_save_as_one_file_or_a_folder() {
    let c = cases();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Tokenizer::learn_bpe(c.train.iter().map(String::as_str), &BPE_NORM, 100, 1).expect("learns");
    let b = Tokenizer::learn_bpe(c.train.iter().map(String::as_str), &BPE_NORM, 90, 1).expect("learns");
    let file = dir.path().join("joint.json");
    assert_eq!(save_pair(&a, &a, &file).expect("saves"), std::slice::from_ref(&file));
    let (s, t) = load_pair(&file, true, BPE_NORM).expect("loads");
    assert_eq!((s.vocab().len(), t.vocab().len()), (100, 100));
    let folder = dir.path().join("sep");
    save_pair(&a, &b, &folder).expect("saves");
    let (s, t) = load_pair(&folder, false, BPE_NORM).expect("loads");
    assert_eq!((s.vocab().len(), t.vocab().len()), (100, 90));
    let err = load_pair(&folder, true, BPE_NORM).expect_err("not joint").to_string();
    assert!(err.contains("differ"), "{err}");
}

#[test]
fn the_fast_split_gives_what_encode_gives() {
    let c = cases();
    let tok = Tokenizer::learn_bpe(c.train.iter().map(String::as_str), &BPE_NORM, 120, 1).expect("learns");
    let Engine::Bpe(hf) = &tok.engine else { panic!("a BPE tokenizer") };
    assert!(bpe::fast_path_applies(hf));
    let mut texts: Vec<String> = c.cases.iter().map(|x| x.text.clone()).chain(c.train.iter().cloned()).collect();
    texts.extend(
        ["Les <unk> élèves", "\tDeux  chiens\n", "", "   ", "a\u{7}b 🐕🐕 c", "Ça, c'est « ça » !"].map(String::from),
    );
    for t in &texts {
        let enc = hf.encode(t.as_str(), false).expect("encodes");
        let (pieces, unknown) = bpe::split(hf, t).expect("splits");
        assert_eq!(pieces, enc.get_tokens(), "{t:?}");
        assert_eq!(unknown.len(), enc.get_ids().iter().filter(|&&i| i == UNK).count(), "{t:?}");
    }
}

#[test]
fn the_word_cache_gives_the_pieces_of_split() {
    let c = cases();
    let mut texts: Vec<String> = c.cases.iter().map(|x| x.text.clone()).chain(c.train.iter().cloned()).collect();
    texts.extend(
        [
            "Les <unk> élèves",
            "\tDeux  chiens\n",
            "",
            " x",
            "a\u{7}b 🐕🐕 c",
            "Ça, c'est « ça » !",
            "Un e\u{301}le\u{300}ve et un élève",
            "a \u{301} b",
            "ΣΟΦΊΑ İstanbul ÉCOLE",
            "deux</s>mots",
        ]
        .map(String::from),
    );
    for (ascii, lowercase) in [(false, false), (true, false), (false, true), (true, true)] {
        let norm = Normalization { ascii, lowercase, ..BPE_NORM };
        let tok = Tokenizer::learn_bpe(c.train.iter().map(String::as_str), &norm, 120, 1).expect("learns");
        let mut cache = WordCache::new(&tok);
        assert!(cache.cuts_word_by_word(), "the pipeline's normalizers act word by word");
        let mut uncached = WordCache::with_limit(&tok, 0);
        // Twice: the second pass reads every word from the cache.
        for t in texts.iter().chain(&texts) {
            let want = tok.vocab().encode(&tok.split(t).expect("splits").0);
            let want = Tokens::Ids(want[..want.len() - 1].to_vec());
            assert_eq!(cache.tokens(t).expect("cached"), want, "{t:?} {norm:?}");
            assert_eq!(uncached.tokens(t).expect("uncached"), want, "{t:?} {norm:?}");
        }
        assert!(!cache.is_empty() && uncached.is_empty());
    }
    let word = Tokenizer::word(BPE_NORM, Vocab::from_tokens(vec!["a".into()]));
    assert_eq!(WordCache::new(&word).tokens("a b").expect("words"), ["a", "b"]);
}

#[test]
fn only_word_by_word_normalizers_use_the_cache() {
    use tokenizers::normalizers::{Sequence, NFC, NFKC};
    use tokenizers::NormalizerWrapper;
    assert!(cache::word_local(&Sequence::new(vec![NFC.into()]).into()));
    assert!(!cache::word_local(&NFKC.into()));
    let prepend: NormalizerWrapper = tokenizers::normalizers::Prepend::new("x".into()).into();
    assert!(!cache::word_local(&Sequence::new(vec![NFC.into(), prepend]).into()));
    let c = cases();
    let mut tok = Tokenizer::learn_bpe(c.train.iter().map(String::as_str), &BPE_NORM, 120, 1).expect("learns");
    let Engine::Bpe(hf) = &mut tok.engine else { panic!("a BPE tokenizer") };
    hf.with_normalizer(Some(NFKC)).expect("sets");
    let mut cache = WordCache::new(&tok);
    assert!(!cache.cuts_word_by_word());
    // U+00A8 (diaeresis) is a space and a combining mark under NFKC.
    let text = "a\u{a8}b élève";
    let want = tok.vocab().encode(&tok.split(text).expect("splits").0);
    assert_eq!(cache.tokens(text).expect("tokens"), Tokens::Ids(want[..want.len() - 1].to_vec()));
}

/// A wide beam over a small vocabulary can pick PAD or SOS; they are never text
/// (`translate --beam 50 --n-best 50` printed `je PAD`).
#[test]
fn pad_and_sos_are_never_text() {
    let words: Vec<String> = vec!["je".into(), "suis".into()];
    let tok = Tokenizer::word(BPE_NORM, Vocab::build(std::iter::once(words.as_slice()), 1, 0));
    let je = tok.vocab().id("je").expect("je");
    let suis = tok.vocab().id("suis").expect("suis");
    assert_eq!(tok.detokenize(&[je, PAD, SOS, suis, EOS, je]), "je suis");
}
