#!/usr/bin/env python3
"""Translates standard input's lines with a model `s2s export --to ctranslate2` wrote, the
way `s2s translate` does: the source ends with EOS, decoding starts from SOS, and the
beam, length penalty and longest translation are the run's (s2s-export.json) unless given.

    python3 scripts/ct2_translate.py EXPORT [--beam N] [--batch 32] [--threads 2]
        [--compute-type float32|int8] [--pieces] [--json] [--stats FILE]

Each line is raw text, made into pieces by the export's source_tokenizer.json (BPE runs),
or, with --pieces, the source pieces themselves separated by spaces (a word run's pieces
are its normalized words). Prints one translation per line: the text (BPE pieces decoded
by target_tokenizer.json, words joined by spaces), or with --json an object with the
output `pieces` and CTranslate2's `score` (the sum of the pieces' log-probabilities, EOS
included, divided by length^length_penalty). --stats writes the seconds spent in
`translate_batch` and the output pieces counted (EOS included) as JSON.
Needs `pip install ctranslate2` (and `tokenizers` for raw text of a BPE run).
"""
import argparse
import json
import os
import sys
import time

import ctranslate2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("export")
    ap.add_argument("--beam", type=int)
    ap.add_argument("--length-penalty", type=float)
    ap.add_argument("--max-length", type=int, help="longest translation in pieces, EOS included")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compute-type", default="float32")
    ap.add_argument("--pieces", action="store_true", help="lines are space-separated source pieces")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--stats")
    args = ap.parse_args()
    with open(os.path.join(args.export, "s2s-export.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    decoding = manifest["decoding"]
    beam = args.beam or decoding["beam_size"]
    penalty = decoding["length_penalty"] if args.length_penalty is None else args.length_penalty
    max_length = args.max_length or decoding["max_decoding_length"]
    bpe = manifest["tokenizer"]["kind"] == "bpe"
    if not args.pieces and not bpe:
        sys.exit("a word run's export reads --pieces: its normalized words, separated by spaces")
    if bpe:
        from tokenizers import Tokenizer

        src_tok = Tokenizer.from_file(os.path.join(args.export, manifest["tokenizer"]["source"]))
        tgt_tok = Tokenizer.from_file(os.path.join(args.export, manifest["tokenizer"]["target"]))

    lines = [line.rstrip("\n") for line in sys.stdin]
    if args.pieces:
        sources = [line.split() for line in lines]
    else:
        sources = [src_tok.encode(line, add_special_tokens=False).tokens for line in lines]
    translator = ctranslate2.Translator(
        args.export, device="cpu", compute_type=args.compute_type, inter_threads=1, intra_threads=args.threads
    )
    t0 = time.perf_counter()
    results = translator.translate_batch(
        sources,
        max_batch_size=args.batch,
        beam_size=beam,
        length_penalty=penalty,
        # s2s lets a translation be empty and counts EOS within its longest translation.
        min_decoding_length=0,
        max_decoding_length=max_length,
        return_scores=True,
    )
    seconds = time.perf_counter() - t0
    out = sys.stdout
    pieces_out = 0
    for r in results:
        pieces = r.hypotheses[0]
        pieces_out += len(pieces) + 1
        if args.json:
            out.write(json.dumps({"pieces": pieces, "score": r.scores[0]}, ensure_ascii=False) + "\n")
        elif bpe:
            ids = [tgt_tok.token_to_id(p) for p in pieces]
            out.write(tgt_tok.decode([i for i in ids if i is not None], skip_special_tokens=True) + "\n")
        else:
            out.write(" ".join(pieces) + "\n")
    if args.stats:
        with open(args.stats, "w", encoding="utf-8") as f:
            json.dump({"translate_batch_s": seconds, "pieces_out": pieces_out, "sentences": len(results)}, f)


if __name__ == "__main__":
    main()
