#!/usr/bin/env python3
"""Makes crates/data/tests/fixtures/python_bpe.json: a BPE tokenizer trained by Python's
`tokenizers` package with s2s's pipeline (whitespace trimmed and collapsed, NFC, Metaspace, BPE with <s> </s> <pad> <unk> at
ids 0-3), and the ids and decoded text it gives for some sentences. The Rust test
`python_tokenizer_round_trip` loads the tokenizer, encodes the same sentences, and checks
that s2s gets the same ids and text; it also trains its own on the same text and checks it
encodes the same.

    pip install tokenizers==0.23.2
    python3 scripts/tokenizer_fixture.py
"""
import json
import pathlib

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/data/tests/fixtures"

# Training text: the notebook's pairs and some accented, cased French and German.
TRAIN = [
    "I am a student.", "Je suis étudiant.", "He is a teacher.", "Il est professeur.",
    "She is a doctor.", "Elle est médecin.", "We are engineers.", "Nous sommes ingénieurs.",
    "They are artists.", "Ils sont artistes.", "Two dogs run through the snow.",
    "Deux chiens courent dans la neige.", "Zwei Hunde laufen durch den Schnee.",
    "A man in an orange hat starring at something.", "Un homme avec un chapeau orange regardant quelque chose.",
    "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.", "Les élèves arrivent à l'école.",
]
# Sentences to encode: seen words, unseen words, NFD input, and characters never seen (emoji, CJK).
ENCODE = [
    "Je suis étudiant.", "Two students run to the school.", "Une e\u0301le\u0300ve arrive.",
    "Ein Hund 🐕 läuft im 雪.", "  spaces   everywhere  ", "ÉCOLE",
]


def pipeline():
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Strip(), normalizers.Replace(tokenizers.Regex(r"\s+"), " "), normalizers.NFC()]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    return tok


def main():
    tok = pipeline()
    trainer = trainers.BpeTrainer(
        vocab_size=120, min_frequency=1, special_tokens=["<s>", "</s>", "<pad>", "<unk>"], show_progress=False
    )
    tok.train_from_iterator(TRAIN, trainer)
    OUT.mkdir(parents=True, exist_ok=True)
    tok.save(str(OUT / "python_bpe.json"))
    cases = []
    for s in ENCODE:
        enc = tok.encode(s, add_special_tokens=False)
        cases.append({"text": s, "tokens": enc.tokens, "ids": enc.ids, "decoded": tok.decode(enc.ids)})
    fixture = {"tokenizers_version": tokenizers.__version__, "train": TRAIN, "vocab_size": 120, "cases": cases}
    (OUT / "python_bpe_cases.json").write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT}/python_bpe.json and python_bpe_cases.json ({len(tok.get_vocab())} entries)")


if __name__ == "__main__":
    main()
