#!/usr/bin/env python3
"""s2s against JoeyNMT 2.3 on Multi30k en->fr, side by side in one script: the same data,
model sizes (bidirectional GRU 256, Bahdanau attention, BPE 8k joint) and number of epochs,
whole processes, alternating runs, medians. Prints a markdown table and writes JSON.

Setup (once, see ../shared/bench/joeynmt/README.md):
    python3 -m venv --system-site-packages joey-venv && . joey-venv/bin/activate
    pip install joeynmt==2.3.0 sentencepiece==0.2.0 importlib_metadata
    python3 ../shared/bench/joeynmt/prepare.py joey-work

    python3 scripts/bench_peer.py --joey-python joey-venv/bin/python3 --joey-work joey-work \
        --data ../shared/data --rounds 3 --epochs 1

Each round runs JoeyNMT's own `train` (through the team's run_timed.py, 2 threads, greedy
validation at the epoch's end), then `s2s run configs/multi30k.toml` for the same number of
epochs. Peak memory is the child's maximum resident set size (wait4's ru_maxrss).
"""
import argparse
import csv
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, env=None, log=None):
    """Runs cmd; returns (wall seconds, peak RSS in bytes)."""
    t0 = time.time()
    with open(log or os.devnull, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(p.pid, 0)
    wall = time.time() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed ({status}): {' '.join(cmd)}; see {log}")
    return wall, usage.ru_maxrss * 1024


def joey(args, work, epochs, log):
    cfg = os.path.join(args.joey_work, "configs", "rnn_gru256.yaml")
    model_dir = os.path.join(work, "joey")
    shutil.rmtree(model_dir, ignore_errors=True)
    # run_timed.py stops after the epoch whose end is nearest the budget: a budget of
    # (epochs - 0.4) x a short epoch stops after `epochs` epochs.
    budget = str(max(1.0, (epochs - 0.4) * 100.0))
    env = dict(os.environ, OMP_NUM_THREADS="2")
    script = os.path.join(args.shared, "bench", "joeynmt", "run_timed.py")
    wall, rss = timed([args.joey_python, script, cfg, "--budget", budget, "--threads", "2", "--model-dir", model_dir],
                      env=env, log=log)
    timing = json.load(open(os.path.join(model_dir, "timing.json")))
    ep = timing["epochs"]
    bleus = re.findall(r"bleu:\s*([0-9.]+)", open(os.path.join(model_dir, "validations.txt")).read())
    return {"wall_s": wall, "peak_rss": rss, "epochs": len(ep),
            "epoch_s": statistics.mean(e["epoch_wall_s"] for e in ep), "valid_bleu": float(bleus[-1])}


def s2s(args, work, epochs, log):
    out = os.path.join(work, "s2s")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [args.s2s, "run", os.path.join(ROOT, "configs", "multi30k.toml"),
           "--set", f"data.train_path={args.data}/multi30k-en-fr.train.tsv",
           "--set", f"data.valid_path={args.data}/multi30k-en-fr.valid.tsv",
           "--set", f"train.epochs={epochs}", "--set", f"run.output_dir={out}", "--set", "run.threads=2"]
    wall, rss = timed(cmd, log=log)
    run = glob.glob(os.path.join(out, "*"))[0]
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    return {"wall_s": wall, "peak_rss": rss, "epochs": len(rows), "epoch_s": float(rows[-1]["elapsed_s"]) / len(rows),
            "valid_bleu": float(rows[-1]["valid_bleu"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--joey-python", required=True)
    ap.add_argument("--joey-work", required=True)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--s2s", default=os.path.join(ROOT, "target", "release", "s2s"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", default="bench-peer.json")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-peer-")
    results = {"joeynmt": [], "s2s": []}
    for r in range(args.rounds):
        for name, fn in (("joeynmt", joey), ("s2s", s2s)):
            res = fn(args, work, args.epochs, os.path.join(work, f"{name}-{r}.log"))
            results[name].append(res)
            print(f"round {r + 1}: {name}: {json.dumps(res)}", flush=True)
    med = {n: {k: statistics.median(x[k] for x in v) for k in ("wall_s", "peak_rss", "epoch_s")}
           for n, v in results.items()}
    j, s = med["joeynmt"], med["s2s"]
    print(f"\n{args.rounds} alternating rounds of {args.epochs} epoch(s), medians:\n")
    print("| | whole process (s) | s per epoch (train + valid) | peak RSS | valid BLEU (last epoch) |")
    print("| --- | --- | --- | --- | --- |")
    for n in ("joeynmt", "s2s"):
        bleus = " / ".join(f"{x['valid_bleu']:.1f}" for x in results[n])
        print(f"| {n} | {med[n]['wall_s']:.1f} | {med[n]['epoch_s']:.1f} | {med[n]['peak_rss'] / 2**30:.2f} GiB | {bleus} |")
    print(f"\ns2s is {j['wall_s'] / s['wall_s']:.2f}x faster (whole process), {j['epoch_s'] / s['epoch_s']:.2f}x per epoch, "
          f"with {s['peak_rss'] / j['peak_rss']:.2f}x the peak memory")
    json.dump({"rounds": results, "medians": med}, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
