#!/usr/bin/env python3
"""Side-by-side speed benchmark: s2s (release build) against PyTorch's torch_ref.py.

Runs both on the same data, model (Bahdanau, hidden 256), batch size (64) and number of
steps, alternating the two sides, --reps times, and prints medians and ratios
(ours / PyTorch):
  - training target tokens/s with identical batches (torch_ref.py's shuffle, no
    bucketing): the headline, since these are the batches the configs use (random
    batches, the quality of torch_ref.py's); and with s2s's opt-in length bucketing
    (`data.length_bucketing = true`: faster; its quality A/B is in BENCHMARKS.md);
  - greedy decoding sentences/s at batch 64 and at batch 1 (10 decoder steps always);
    s2s's beam search (beam 5, up to 10 steps) at the same batches, which torch_ref.py
    does not have;
  - wall time of configs/base.toml against `torch_ref.py seed` (400 epochs, batch 1);
  - peak resident memory of each process.
Not a test: CI does not run it. Needs `pip install torch` (skips with a message if absent).

With --baseline BIN, PyTorch is left out: `s2s bench` of this build and of an older s2s
binary alternate --reps times, and the decoding figures' medians and ratios are printed
(the baseline's `s2s bench` must print the same keys; its beam rows are left out if not).

  python3 scripts/bench.py [--reps 3] [--steps 100] [--train ../shared/data/eng-fra-18k.train.tsv]
  python3 scripts/bench.py --baseline OLD_S2S --reps 11 --steps 5
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
S2S = ROOT / "target" / "release" / "s2s"
TORCH_REF = ROOT.parent / "shared" / "bench" / "torch_ref.py"


def timed(cmd, cwd=ROOT):
    """Runs cmd under /usr/bin/time; returns (stdout, wall seconds, peak RSS in MiB)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M", *cmd], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{p.stderr[-2000:]}")
    rss = [int(l.split()[1]) for l in p.stderr.splitlines() if l.startswith("MAXRSS")]
    return p.stdout, wall, (rss[-1] / 1024 if rss else float("nan"))


def last_json(out):
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    sys.exit("no JSON line in output:\n" + out[-2000:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--infer-sentences", type=int, default=1000)
    ap.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "data" / "eng-fra-18k.train.tsv")
    ap.add_argument("--torch-ref", type=Path, default=TORCH_REF)
    ap.add_argument("--baseline", type=Path, help="an older s2s binary: compare decoding with it, not with PyTorch")
    args = ap.parse_args()
    if args.baseline:
        return against_baseline(args)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("bench skipped: PyTorch is not installed (pip install torch; about 6 GB)")
        return
    if not args.torch_ref.is_file() or not args.train.is_file():
        print(f"bench skipped: need {args.torch_ref} and {args.train}")
        return
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    common = ["--steps", str(args.steps), "--infer-sentences", str(args.infer_sentences), "--train", str(args.train)]
    figs = {k: [] for k in ("ours_id", "ours_bucket", "torch", "ours_seed", "torch_seed")}
    for rep in range(args.reps):
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        out, _, rss = timed([S2S, "bench", *common])
        figs["ours_id"].append({**last_json(out), "rss": rss})
        out, _, rss = timed([sys.executable, args.torch_ref, "batched", "--hidden", "256", "--batch", "64",
                             "--epochs", "1", "--max-steps", str(args.steps), "--infer-sentences",
                             str(args.infer_sentences), "--train", str(args.train)])
        figs["torch"].append({**last_json(out), "rss": rss})
        out, _, rss = timed([S2S, "bench", "--bucketing", *common])
        figs["ours_bucket"].append({**last_json(out), "rss": rss})
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "s2s-bench-runs"
        _, wall, rss = timed([S2S, "run", "configs/base.toml", "--set", f"run.output_dir={tmp}"])
        figs["ours_seed"].append({"wall": wall, "rss": rss})
        out, wall, rss = timed([sys.executable, args.torch_ref, "seed"])
        figs["torch_seed"].append({"wall": wall, "train_wall": last_json(out)["wall_s"], "rss": rss})

    med = lambda side, key: statistics.median(f[key] for f in figs[side])  # noqa: E731
    rows = [
        ("training tokens/s, default (= torch's) batches", med("ours_id", "train_tok_per_s"), med("torch", "train_tok_per_s"), 1),
        ("training tokens/s, opt-in bucketing vs torch", med("ours_bucket", "train_tok_per_s"), med("torch", "train_tok_per_s"), 1),
        ("greedy decode sent/s, batch 64", med("ours_id", "infer_sent_per_s_b64"), med("torch", "infer_sent_per_s_b64"), 1),
        ("greedy decode sent/s, batch 1", med("ours_id", "infer_sent_per_s_b1"), med("torch", "infer_sent_per_s_b1"), 1),
        ("base.toml wall s (process) vs torch_ref seed", med("ours_seed", "wall"), med("torch_seed", "wall"), -1),
        ("peak RSS MiB, batched (ours / torch)", med("ours_id", "rss"), med("torch", "rss"), -1),
        ("peak RSS MiB, seed (ours / torch)", med("ours_seed", "rss"), med("torch_seed", "rss"), -1),
    ]
    print(f"\ns2s ({figs['ours_id'][0].get('threads')} threads) vs PyTorch {figs['torch'][0].get('torch')} "
          f"({figs['torch'][0].get('threads')} threads), hidden 256, batch 64, {args.steps} steps, "
          f"medians of {args.reps} alternating repetitions")
    print("default batches: s2s bench without --bucketing replays torch_ref.py's splitmix64 "
          "Fisher-Yates order and per-batch padding, which is what the configs train on; 'opt-in "
          "bucketing' is data.length_bucketing = true (its quality A/B is in BENCHMARKS.md).")
    print(f"{'figure':<48} {'s2s':>10} {'pytorch':>10} {'ratio':>8}")
    for name, ours, theirs, sense in rows:
        ratio = ours / theirs if sense > 0 else theirs / ours
        label = "x faster" if sense < 0 and "wall" in name else ("x" if sense > 0 else "x less")
        print(f"{name:<48} {ours:>10.1f} {theirs:>10.1f} {ratio:>7.2f}{label}")
    print("(time ratios are PyTorch / s2s: above 1 means s2s is faster; memory ratios PyTorch / s2s)")
    for name, key in DECODING[2:]:
        if all(key in f for f in figs["ours_id"]):
            print(f"{name + ' (s2s only)':<48} {med('ours_id', key):>10.1f}")


DECODING = [
    ("greedy decode sent/s, batch 64", "infer_sent_per_s_b64"),
    ("greedy decode sent/s, batch 1", "infer_sent_per_s_b1"),
    ("beam 5 decode sent/s, batch 64", "infer_beam_sent_per_s_b64"),
    ("beam 5 decode sent/s, batch 1", "infer_beam_sent_per_s_b1"),
]


def against_baseline(args):
    """This build's `s2s bench` against --baseline's, alternating; decoding figures only."""
    if not args.train.is_file():
        print(f"bench skipped: need {args.train}")
        return
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    common = ["bench", "--steps", str(args.steps), "--infer-sentences", str(args.infer_sentences),
              "--train", str(args.train)]
    figs = {"ours": [], "baseline": []}
    for rep in range(args.reps):
        print(f"repetition {rep + 1}/{args.reps}", file=sys.stderr)
        for side, binary in (("ours", S2S), ("baseline", args.baseline)):
            out, _, rss = timed([binary, *common])
            figs[side].append({**last_json(out), "rss": rss})
            row = figs[side][-1]
            print(f"  {side:<8} " + "  ".join(f"{k}={row.get(k, '-')}" for _, k in DECODING), file=sys.stderr)
    print(f"\ns2s ({figs['ours'][0].get('threads')} threads) against {args.baseline}, hidden 256, "
          f"{args.infer_sentences} sentences, medians of {args.reps} alternating repetitions")
    print(f"{'figure':<36} {'s2s':>10} {'baseline':>10} {'ratio':>8}")
    for name, key in DECODING:
        if all(key in f for f in figs["ours"] + figs["baseline"]):
            ours = statistics.median(f[key] for f in figs["ours"])
            theirs = statistics.median(f[key] for f in figs["baseline"])
            print(f"{name:<36} {ours:>10.1f} {theirs:>10.1f} {ours / theirs:>7.2f}x")
    ours = statistics.median(f["rss"] for f in figs["ours"])
    theirs = statistics.median(f["rss"] for f in figs["baseline"])
    print(f"{'peak RSS MiB (whole bench process)':<36} {ours:>10.1f} {theirs:>10.1f}")


if __name__ == "__main__":
    main()
