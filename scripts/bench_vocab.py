#!/usr/bin/env python3
"""Issue 15's large-vocabulary check: do the fused CPU kernels and the greedy decoder keep
their speed with a 10,000-word vocabulary and 50-token sentences, and do memory and data
loading grow linearly? Three parts, each printing a markdown table for BENCHMARKS.md:

  speed   s2s against PyTorch (`../shared/bench/torch_ref.py batched`) side by side, at a
          small setting (1,000 words a side, sentences of 10 tokens with EOS) and a large
          one (10,000 words, 50 tokens), on synthetic word-for-word translation
          TSVs (Zipfian words, every vocabulary word present). The model is torch_ref's and
          configs/tatoeba.toml's (GRU 256, Bahdanau, batches of 64 random sentences, Adam
          1e-3, dropout 0.1). torch_ref keeps only pairs under 10 words and decodes 10
          steps (the tutorial's MAX_LENGTH); it is run unchanged except that this script
          sets its MAX_LENGTH and greedy step count to the setting's length (the model code
          is its own). Figures: training target tokens/s (s2s: the epoch's tokens_per_s in
          metrics.csv; torch: its --max-steps training of the same number of batches) and
          greedy-decoding tokens/s at batch 64 with every sentence decoded for the full
          length (s2s: `s2s eval --beam 1` at max_decode_length L minus the same at 1, over
          the L - 1 extra steps; torch: its greedy() timed at L steps minus at 1 step, the
          encoder outside both). Also the useful matmul FLOPs per token (the formula of
          torch_ref's --flops, Ua(keys) once per sentence, no padding) and the GFLOP/s they
          give. Alternating, --reps times, medians; 1 thread each
          by default (--threads). torch decodes all L steps; s2s stops a batch once all
          its sentences have ended, so its steps are counted from `s2s translate --beam 1`.
  memory  peak RSS of one short training run of configs/multi30k.toml's model (bidirectional
          GRU 256, Bahdanau, tied embeddings; word vocabulary of 10,000) on sentences of
          exactly 50 tokens, at train.batch_tokens 1000, 2000, 4000 and 8000, and the
          increase per 1,000 batch tokens.
  data    `s2s bench-data` (read, normalize, tokenize, encode, batch) on 250k, 500k and 1M
          pairs (Multi30k's training file repeated 35 times, the first N lines), with the
          8k BPE tokenizer from a file: seconds and peak RSS, alternating, medians.

    python3 scripts/bench_vocab.py --torch-python /tmp/joey-venv/bin/python3 [--parts speed,memory,data]
"""
import argparse
import csv
import glob
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import accumulate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H = 256  # hidden and embedding size of both models

# ------------------------------------------------------------------------------ data


def word(i):
    """The i-th synthetic word: lowercase letters only (both tokenizers keep it whole)."""
    s = ""
    i += 26 * 27  # at least three letters
    while i:
        i, r = divmod(i, 26)
        s += chr(97 + r)
    return s


def write_pairs(path, vocab, max_words, n, seed, exact=False):
    """n pairs of 1..max_words words (exactly max_words with `exact`); the target is the
    source translated word for word by a fixed permutation. Words are Zipfian (s = 1),
    and every one of the `vocab` words appears on both sides (drawn in at random places
    of the first 80% of the file), so the vocabularies have exactly `vocab` words."""
    rng = random.Random(seed)
    cum = list(accumulate(1.0 / (r + 1) for r in range(vocab)))
    perm = list(range(vocab))
    rng.shuffle(perm)
    lengths = [max_words if exact else rng.randint(1, max_words) for _ in range(n)]
    cover = list(range(vocab))
    rng.shuffle(cover)
    q = min(1.0, vocab / (0.8 * sum(lengths)))
    src_words, tgt_words = [word(i) for i in range(vocab)], [word(perm[i]) for i in range(vocab)]
    with open(path, "w") as f:
        for length in lengths:
            ids = [cover.pop() if cover and rng.random() < q else rng.choices(range(vocab), cum_weights=cum)[0]
                   for _ in range(length)]
            f.write(" ".join(src_words[i] for i in ids) + "\t" + " ".join(tgt_words[i] for i in ids) + "\n")
    if cover:
        raise SystemExit(f"{path}: {len(cover)} words left out; use more pairs")


def lines_of(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t")[0].split(" ") for line in f]


def model_flops(src_lens, tgt_lens, vocab):
    fwd, dec_step, n = 0, 0, 0
    for s, t in zip(src_lens, tgt_lens):
        per_step = (2 * H * H + 2 * s * H + 2 * s * H + 2 * (2 * H) * 3 * H + 2 * H * 3 * H + 2 * H * vocab)
        fwd += 2 * s * H * 3 * H * 2 + 2 * s * H * H + t * per_step
        dec_step += per_step
        n += 1
    return 3 * fwd / sum(tgt_lens), dec_step / n


# --------------------------------------------------------------------------- running


def proc(cmd, stdin, cwd=ROOT):
    """Runs cmd with stdin; returns its stdout."""
    p = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{p.stderr[-3000:]}")
    return p.stdout


def timed(cmd, cwd=ROOT):
    """Runs cmd; returns (stdout, wall s, peak RSS MiB of the process)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{err.decode()[-3000:]}")
    return out.decode(), wall, usage.ru_maxrss / 1024  # ru_maxrss is in KiB


def json_lines(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def sets(*kv):
    return sum((["--set", s] for s in kv), [])


def s2s_train(args, config, extra, work):
    out = os.path.join(work, "runs")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [args.s2s, "run", config, *sets("train.epochs=1", f"run.output_dir={out}", "report.tensorboard=false",
                                           f"run.threads={args.threads}", *extra)]
    _, wall, rss = timed(cmd)
    run = glob.glob(os.path.join(out, "*"))[0]
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    return run, wall, rss, rows[-1]


def set_decode_length(run, length):
    path = os.path.join(run, "config.toml")
    text = open(path).read()
    text, n = re.subn(r"(?m)^max_decode_length = \d+", f"max_decode_length = {length}", text)
    assert n == 1, "no model.max_decode_length in " + path
    open(path, "w").write(text)


def s2s_eval(args, run, data, length):
    set_decode_length(run, length)
    _, wall, _ = timed([args.s2s, "eval", run, "--data", data, "--beam", "1", "--checkpoint", "last", "--json"])
    return wall


# ----------------------------------------------------------------------------- speed


def speed(args, work):
    settings = [("small", 1000, 10, args.steps_small), ("large", 10000, 50, args.steps_large)]
    decode_n = {"small": args.decode_sentences_small, "large": args.decode_sentences_large}
    tatoeba = os.path.join(ROOT, "configs", "tatoeba.toml")
    files = {}
    for name, vocab, length, steps in settings:
        train, infer = os.path.join(work, f"{name}.tsv"), os.path.join(work, f"{name}-decode.tsv")
        write_pairs(train, vocab, length - 1, 64 * steps, seed=1, exact=True)
        with open(train) as f, open(infer, "w") as g:
            g.writelines(f.readlines()[:decode_n[name]])
        src = [len(w) + 1 for w in lines_of(train)]
        train_flops, step_flops = model_flops(src, src, vocab)
        files[name] = (train, infer, train_flops, step_flops)
    figs = {(n, side): [] for n, *_ in settings for side in ("s2s", "torch")}
    checked = {}
    for rep in range(args.reps):
        for name, vocab, length, steps in settings:
            train, infer, _, _ = files[name]
            order = ("s2s", "torch") if rep % 2 == 0 else ("torch", "s2s")
            for side in order:
                print(f"speed: repetition {rep + 1}/{args.reps}, {name}, {side}", file=sys.stderr)
                if side == "s2s":
                    run, _, rss, row = s2s_train(args, tatoeba, [
                        f"data.train_path={train}", f"data.valid_path={infer}", f"data.max_length={length}",
                        f"model.max_decode_length={length}", "train.validate_every=0"], work)
                    # Decoding: the L - 1 steps beyond the first, the rest (loading, the
                    # teacher-forced loss, scoring) cancels out; the order alternates.
                    ev = {}
                    for n in ((length, 1) if rep % 2 == 0 else (1, length)):
                        ev[n] = s2s_eval(args, run, infer, n)
                    if name not in checked:
                        # How many steps did each batch of 64 run? Greedy stops once all its
                        # sentences have ended (finished ones are computed until then): the
                        # longest output + EOS, at most L. Outputs from `translate --beam 1`
                        # (the same picks); the model is the same in every repetition.
                        set_decode_length(run, length)
                        first = [" ".join(w) for w in lines_of(infer)]
                        out = proc([args.s2s, "translate", run, "--beam", "1", "--checkpoint", "last"],
                                   "\n".join(first) + "\n")
                        outs = [min(length, len(line.split()) + 1) for line in out.splitlines()]
                        batches = [outs[i:i + 64] for i in range(0, len(outs), 64)]
                        checked[name] = (sum(n >= length for n in outs), len(outs), statistics.mean(outs),
                                         sum(len(b) * (max(b) - 1) for b in batches),
                                         statistics.mean(max(b) for b in batches))
                    rows = checked[name][3]  # sentences x (steps - 1), over all batches
                    figs[(name, side)].append({"train": float(row["tokens_per_s"]), "steps": int(row["step"]),
                                               "decode": rows / (ev[length] - ev[1]), "rss": rss})
                else:
                    out, _, rss = timed([args.torch_python, os.path.abspath(__file__), "torch-side", args.torch_ref,
                                         str(length), "batched", "--hidden", str(H), "--batch", "64", "--epochs",
                                         "1", "--max-steps", str(steps), "--infer-sentences",
                                         str(args.torch_decode_sentences), "--train", train, "--threads",
                                         str(args.threads)])
                    ref, patch = json_lines(out)[-2:]
                    g = patch["greedy"]
                    figs[(name, side)].append({"train": ref["train_tok_per_s"], "steps": ref["steps"],
                                               "decode": g["rows"] * (length - 1) / (g["steps_L_s"] - g["steps_1_s"]),
                                               "rss": rss, "vocab": ref["tgt_vocab"]})
    med = lambda name, side, key: statistics.median(f[key] for f in figs[(name, side)])  # noqa: E731
    print("\n| setting | vocab (tgt) | s2s train tok/s | torch train tok/s | s2s / torch | s2s greedy tok/s "
          "(batch 64) | torch greedy tok/s | s2s / torch | train MFLOP/token | s2s train GFLOP/s | "
          "s2s greedy GFLOP/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, vocab, length, steps in settings:
        tf, sf = files[name][2:]
        row = [f"{name}: {vocab:,} words, {length} tokens, {steps} steps", f"{figs[(name, 'torch')][0]['vocab']:,}"]
        for key in ("train", "decode"):
            lists = [[f[key] for f in figs[(name, side)]] for side in ("s2s", "torch")]
            row += [" / ".join(f"{x:,.0f}" for x in l) + f" → **{statistics.median(l):,.0f}**" for l in lists]
            row.append(f"**{med(name, 's2s', key) / med(name, 'torch', key):.2f}×**")
        row += [f"{tf / 1e6:.2f}", f"{med(name, 's2s', 'train') * tf / 1e9:.1f}",
                f"{med(name, 's2s', 'decode') * sf / 1e9:.1f}"]
        print("| " + " | ".join(row) + " |")
    for name, (full, n, mean, rows, steps) in checked.items():
        print(f"{name}: s2s decoded {full} of {n} sentences for the full length (mean {mean:.1f} steps with EOS); "
              f"its batches of 64 ran {steps:.1f} steps on average: {rows:,} sentence-steps beyond the first")
    for name, *_ in settings:
        print(f"{name}: peak RSS s2s {med(name, 's2s', 'rss'):,.0f} MiB, torch {med(name, 'torch', 'rss'):,.0f} MiB;"
              f" s2s steps {figs[(name, 's2s')][0]['steps']}, torch steps {figs[(name, 'torch')][0]['steps']}")


def torch_side(argv):
    """Runs torch_ref.py with its MAX_LENGTH and greedy steps set to argv[1]; greedy at batch
    > 1 is timed at 1 step and at L steps (the encoder outside); batch 1 decodes 3 sentences
    only (s2s eval has no batch-1 path to compare with). Prints torch_ref's JSON, then ours."""
    import importlib.util
    path, length = argv[0], int(argv[1])
    spec = importlib.util.spec_from_file_location("torch_ref", path)
    tr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tr)
    tr.MAX_LENGTH = length
    orig_greedy, orig_batches = tr.AttnDecoder.greedy, tr.make_batches
    timing = {"rows": 0, "steps_1_s": 0.0, "steps_L_s": 0.0}
    warm = []

    def greedy(self, enc_out, enc_h, mask, steps=length, stop_at_eos=False):
        if enc_out.size(0) == 1:
            return orig_greedy(self, enc_out, enc_h, mask, steps, stop_at_eos)
        if not warm:  # the first call of each shape is slower: once, untimed
            warm.append(orig_greedy(self, enc_out, enc_h, mask, steps, stop_at_eos))
        t0 = time.perf_counter()
        orig_greedy(self, enc_out, enc_h, mask, 1, False)
        t1 = time.perf_counter()
        out = orig_greedy(self, enc_out, enc_h, mask, steps, stop_at_eos)
        t2 = time.perf_counter()
        timing["rows"] += enc_out.size(0)
        timing["steps_1_s"] += t1 - t0
        timing["steps_L_s"] += t2 - t1
        return out

    def make_batches(src, tgt, order, batch):
        b = orig_batches(src, tgt, order, batch)
        return b[:3] if batch == 1 else b

    tr.AttnDecoder.greedy, tr.make_batches = greedy, make_batches
    sys.argv = [path] + argv[2:]
    tr.main()
    print(json.dumps({"greedy": timing}))


# ---------------------------------------------------------------------------- memory


def memory(args, work):
    train, valid = os.path.join(work, "mem.tsv"), os.path.join(work, "mem-valid.tsv")
    write_pairs(train, 10000, 49, args.memory_pairs, seed=2, exact=True)
    write_pairs(valid, 200, 49, 16, seed=3, exact=True)
    m30 = os.path.join(ROOT, "configs", "multi30k.toml")
    res = {}
    for rep in range(args.memory_reps):
        for bt in (1000, 2000, 4000, 8000):
            print(f"memory: repetition {rep + 1}/{args.memory_reps}, batch_tokens {bt}", file=sys.stderr)
            _, wall, rss, row = s2s_train(args, m30, [
                f"data.train_path={train}", f"data.valid_path={valid}", "data.tokenizer=\"word\"",
                "data.max_vocab_size=0", f"train.batch_tokens={bt}", "train.validate_every=0",
                "report.sentences=[]"], work)
            res.setdefault(bt, []).append((rss, int(row["step"]), float(row["tokens_per_s"])))
    print(f"\n{args.memory_pairs} pairs of 50 tokens (49 words + EOS), 10,000 words, 1 epoch, no validation")
    print("| batch_tokens | sentences / batch | steps | tokens/s | peak RSS | + per 1,000 batch tokens |")
    print("| --- | --- | --- | --- | --- | --- |")
    prev = None
    for bt, runs in res.items():
        rss = statistics.median(r[0] for r in runs)
        inc = "" if prev is None else f"{(rss - prev[1]) / ((bt - prev[0]) / 1000):.0f} MiB"
        print(f"| {bt} | {bt // 50} | {runs[0][1]} | {statistics.median(r[2] for r in runs):,.0f} | "
              f"{' / '.join(f'{r[0]:,.0f}' for r in runs)} MiB | {inc} |")
        prev = (bt, rss)


# ------------------------------------------------------------------------------ data


def data(args, work):
    m30 = os.path.join(ROOT, "configs", "multi30k.toml")
    src = os.path.join(args.data, "multi30k-en-fr.train.tsv")
    lines = open(src).readlines()
    big = os.path.join(work, "1m.tsv")
    with open(big, "w") as f:
        for _ in range(35):
            f.writelines(lines)
    sizes = {1000000: None, 500000: None, 250000: None}
    for n in sizes:
        path = os.path.join(work, f"{n}.tsv")
        with open(big) as f, open(path, "w") as g:
            for i, line in enumerate(f):
                if i >= n:
                    break
                g.write(line)
        sizes[n] = path
    tok = os.path.join(work, "tok.json")
    subprocess.run([args.s2s, "tokenizer", "train", m30, "--out", tok, *sets(f"data.train_path={src}")],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    res = {n: [] for n in sizes}
    for rep in range(args.reps):
        for n in (list(sizes) if rep % 2 == 0 else list(sizes)[::-1]):
            print(f"data: repetition {rep + 1}/{args.reps}, {n} pairs", file=sys.stderr)
            out, wall, rss = timed([args.s2s, "bench-data", m30, *sets(f"data.train_path={sizes[n]}",
                                                                        f"data.tokenizer_path={tok}")])
            res[n].append({**json_lines(out)[-1], "wall": wall, "rss": rss})
    print("\n| pairs | target tokens | load (read, normalize, tokenize) s | encode s | batches s | "
          "whole process s | s per 100k pairs | peak RSS | MiB per 100k pairs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in sorted(res):
        r = res[n]
        m = lambda k: statistics.median(x[k] for x in r)  # noqa: E731
        walls = " / ".join(f"{x['wall']:.1f}" for x in r)
        print(f"| {r[0]['train_pairs']:,} | {r[0]['target_tokens']:,} | {m('load_s'):.2f} | {m('encode_s'):.2f} | "
              f"{m('batch_s'):.2f} | {walls} → **{m('wall'):.1f}** | "
              f"{m('wall') / n * 1e5:.2f} | {m('rss'):,.0f} MiB | {m('rss') / n * 1e5:.0f} |")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "torch-side":
        return torch_side(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="speed,memory,data")
    ap.add_argument("--s2s", default=os.path.join(ROOT, "target", "release", "s2s"))
    ap.add_argument("--torch-python", default=sys.executable, help="a Python with torch installed")
    ap.add_argument("--torch-ref", default=os.path.join(ROOT, "..", "shared", "bench", "torch_ref.py"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="both sides' threads (torch's OpenMP threads slow down 3x on a busy machine at 2)")
    ap.add_argument("--steps-small", type=int, default=40, help="training batches of 64 at the small setting")
    ap.add_argument("--steps-large", type=int, default=10, help="training batches of 64 at the large setting")
    ap.add_argument("--decode-sentences-small", type=int, default=2048, help="s2s eval's sentences (batches of 64)")
    ap.add_argument("--decode-sentences-large", type=int, default=512)
    ap.add_argument("--torch-decode-sentences", type=int, default=256)
    ap.add_argument("--memory-pairs", type=int, default=640)
    ap.add_argument("--memory-reps", type=int, default=1)
    ap.add_argument("--work", default=None, help="scratch folder (default: a new one under $TMPDIR)")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="bench-vocab-")
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    for part in args.parts.split(","):
        {"speed": speed, "memory": memory, "data": data}[part](args, work)
        print(f"({part}: done at {time.time() - t0:.0f} s; load average {os.getloadavg()[0]:.1f})")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
