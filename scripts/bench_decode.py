#!/usr/bin/env python3
"""Decoding speed side by side: s2s against CTranslate2 (fp32 and int8) on one Multi30k
Transformer run, exported with `s2s export --to ctranslate2`.

Every side translates the same validation sources on the same number of threads (2), greedy
and beam 5 (the run's length penalty), in batches of 32 and of 1; every command is a whole
process, run once per round, the rounds alternating the sides; the table gives medians:
  - wall seconds of the whole process (and, for CTranslate2, the seconds inside
    `translate_batch`, without Python's start, the model's load and the tokenizers);
  - target pieces per second of wall time (the output's pieces, EOS included, counted by
    the run's target tokenizer; s2s eval prints no text, so its rows count the pieces of
    `s2s translate`'s output for the same decoding);
  - peak resident memory of the process;
  - BLEU of the output against the references (sacrebleu; s2s eval's own BLEU, which
    equals sacreBLEU's defaults, for its rows);
and how many translations are identical to `s2s translate`'s.
s2s's rows are `s2s translate --batch-size 32` and `--batch-size 1` (batch 1: one sentence
at a time, as a user types them), and `s2s eval` (batches of 64, after a teacher-forced
loss pass). With --baseline BIN, an older s2s binary's `translate` (it decodes one sentence
at a time) and `eval` rows come too: the before and after of a change, measured side by
side; identity is counted against the baseline's `translate` then.

    python3 scripts/bench_decode.py RUN [--valid ../shared/data/multi30k-en-fr.valid.tsv]
        [--rounds 3] [--threads 2] [--s2s target/release/s2s] [--baseline OLD_S2S]
        [--omp-active] [--json FILE]

RUN: a Multi30k Transformer run folder (configs/multi30k-transformer.toml), or `train` to
train one for --epochs epochs first (about 5 minutes an epoch on 2 quiet cores). Needs
this Python to have ctranslate2, tokenizers and sacrebleu (`pip install ctranslate2
tokenizers sacrebleu`). Not a test: CI does not run it.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sacrebleu
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
CT2_TRANSLATE = ROOT / "scripts" / "ct2_translate.py"


def run_measured(cmd, stdin_text, env):
    """(stdout, wall seconds, peak RSS MiB): the child's own maximum via wait4."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        fin.write(stdin_text.encode())
        fin.seek(0)
        p = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=ferr, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read().decode(), ferr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed: {err[-2000:]}")
    return out, wall, usage.ru_maxrss / 1024


def train(s2s, valid, epochs, workdir, env):
    train_tsv = str(valid).replace(".valid.", ".train.")
    cfg = ROOT / "configs" / "multi30k-transformer.toml"
    cmd = [s2s, "run", str(cfg), "--set", f"data.train_path={train_tsv}", "--set", f"data.valid_path={valid}",
           "--set", f"train.epochs={epochs}", "--set", f"run.output_dir={workdir}/experiments"]
    print("training:", " ".join(map(str, cmd)), flush=True)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return sorted((Path(workdir) / "experiments").iterdir())[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--valid", default=str(ROOT.parent / "shared" / "data" / "multi30k-en-fr.valid.tsv"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1, help="with RUN = train")
    ap.add_argument("--s2s", default=str(ROOT / "target" / "release" / "s2s"))
    ap.add_argument("--baseline", help="an older s2s binary, measured beside --s2s (its translate and eval)")
    ap.add_argument("--s2s-only", action="store_true",
                    help="no CTranslate2 rows (a GRU run, which cannot be exported): s2s against --baseline")
    ap.add_argument("--json", help="write every measurement here")
    ap.add_argument("--omp-active", action="store_true",
                    help="leave CTranslate2's OpenMP threads spinning while they wait (libgomp's default)")
    args = ap.parse_args()
    env = dict(os.environ, S2S_RUN__THREADS=str(args.threads))
    # CTranslate2's OpenMP threads spin while they wait by default: on 2 cores shared with
    # other processes a spinning thread holds a core that the thread it waits for needs
    # (3 sentences took 3.9 s instead of 0.4 s here at a load of 4). Passive waiting is
    # what a server that shares its cores would use.
    ct2_env = dict(env) if args.omp_active else dict(env, OMP_WAIT_POLICY="PASSIVE")
    work = tempfile.mkdtemp(prefix="bench-decode-")
    run = Path(train(args.s2s, args.valid, args.epochs, work, env) if args.run == "train" else args.run)
    export = Path(work) / "ct2"
    if not args.s2s_only:
        subprocess.run([args.s2s, "export", str(run), "--to", "ctranslate2", str(export), "--python", sys.executable],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    pairs = [line.rstrip("\n").split("\t") for line in open(args.valid, encoding="utf-8") if line.strip()]
    sources = "".join(p[0] + "\n" for p in pairs)
    refs = [p[1] for p in pairs]
    tgt_tok = Tokenizer.from_file(str(run / "tokenizer" / "target.json" if args.s2s_only
                                      else export / "target_tokenizer.json"))

    def pieces(text_out):
        return sum(len(tgt_tok.encode(t, add_special_tokens=False).tokens) + 1 for t in text_out)

    cases = []
    for beam in (1, 5):
        dec = "greedy" if beam == 1 else "beam 5"
        if args.baseline:
            cases.append(("s2s before: eval", dec, "64" if beam == 1 else "1/thread",
                          [args.baseline, "eval", str(run), "--data", args.valid, "--beam", str(beam), "--json"], "eval"))
            cases.append(("s2s before: translate", dec, "1",
                          [args.baseline, "translate", str(run), "--beam", str(beam)], "text"))
        cases.append(("s2s eval", dec, "64",
                      [args.s2s, "eval", str(run), "--data", args.valid, "--beam", str(beam), "--json"], "eval"))
        for batch in (32, 1):
            cases.append(("s2s translate", dec, str(batch),
                          [args.s2s, "translate", str(run), "--beam", str(beam), "--batch-size", str(batch)], "text"))
        for ct in () if args.s2s_only else ("float32", "int8"):
            for batch in (32, 1):
                cmd = [sys.executable, str(CT2_TRANSLATE), str(export), "--beam", str(beam), "--batch", str(batch),
                       "--threads", str(args.threads), "--compute-type", ct]
                cases.append((f"CTranslate2 {'fp32' if ct == 'float32' else ct}", dec, str(batch), cmd, "ct2"))

    results = {i: [] for i in range(len(cases))}
    outputs = {}
    for r in range(args.rounds):
        order = list(range(len(cases))) if r % 2 == 0 else list(reversed(range(len(cases))))
        for i in order:
            name, dec, batch, cmd, kind = cases[i]
            stats = Path(work) / "stats.json"
            full = cmd + (["--stats", str(stats)] if kind == "ct2" else [])
            load = os.getloadavg()[0]
            out, wall, rss = run_measured(full, sources, ct2_env if kind == "ct2" else env)
            m = {"wall_s": wall, "rss_mib": rss, "load": load}
            if kind == "ct2":
                m["translate_batch_s"] = json.loads(stats.read_text())["translate_batch_s"]
            if kind == "eval":
                m["bleu"] = json.loads(out)["bleu"]
            else:
                lines = out.split("\n")[: len(pairs)]
                outputs[i] = lines
                m["bleu"] = sacrebleu.corpus_bleu(lines, [refs]).score
            results[i].append(m)
            print(f"round {r + 1}: {name:18} {dec:7} batch {batch:8} {wall:7.1f} s  {rss:6.0f} MiB  "
                  f"BLEU {m['bleu']:.2f}  (load {load:.1f})", flush=True)

    # Identity against s2s translate (the baseline's when there is one; else batch 1), per decoding.
    ref_side = "s2s before: translate" if args.baseline else "s2s translate"
    reference = {}
    for i in outputs:
        if cases[i][0] == ref_side and cases[i][1] not in reference:
            reference[cases[i][1]] = outputs[i]
    print(f"\n{len(pairs)} sentences, {args.threads} threads, {args.rounds} rounds (medians), run {run}, "
          f"CTranslate2's OpenMP waiting {'actively' if args.omp_active else 'passively'}")
    print(f"| side | decoding | batch | wall s | in translate_batch s | target pieces/s | peak MiB | BLEU | "
          f"identical to {ref_side} |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    rows = []
    for i, (name, dec, batch, _, kind) in enumerate(cases):
        ms = results[i]
        wall = statistics.median(m["wall_s"] for m in ms)
        inner = statistics.median(m["translate_batch_s"] for m in ms) if kind == "ct2" else None
        rss = statistics.median(m["rss_mib"] for m in ms)
        bleu = statistics.median(m["bleu"] for m in ms)
        counted = outputs.get(i) or reference[dec]
        tps = pieces(counted) / wall
        same = (f"{sum(a == b for a, b in zip(outputs[i], reference[dec]))} / {len(pairs)}"
                if i in outputs else "")
        rows.append({"side": name, "decoding": dec, "batch": batch, "wall_s": wall, "translate_batch_s": inner,
                     "pieces_per_s": tps, "peak_mib": rss, "bleu": bleu, "identical": same, "runs": ms})
        print(f"| {name} | {dec} | {batch} | {wall:.1f} | {'' if inner is None else f'{inner:.1f}'} | "
              f"{tps:.0f} | {rss:.0f} | {bleu:.2f} | {same} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"run": str(run), "sentences": len(pairs), "threads": args.threads,
                                               "rounds": args.rounds, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
