#!/usr/bin/env python3
"""How s2s scales with sentence length: seconds per epoch and peak RSS for Multi30k at
data.max_length 10, 25 and 50 (BPE pieces), and for the synthetic copy task with sequences of
up to 25, 50 and 100 symbols. One epoch each, whole process, one run per row (run it on a
quiet machine). Prints a markdown table for BENCHMARKS.md.

    python3 scripts/bench_scaling.py --data ../shared/data
"""
import argparse
import csv
import glob
import os
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(s2s, config, sets, work):
    out = os.path.join(work, "runs")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [s2s, "run", config, "--set", "train.epochs=1", "--set", f"run.output_dir={out}",
           "--set", "report.tensorboard=false", "--set", "run.threads=2"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.time() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr.read().decode()}")
    rows = list(csv.DictReader(open(glob.glob(os.path.join(out, "*", "metrics.csv"))[0])))
    return wall, usage.ru_maxrss / 1024, rows[-1]  # ru_maxrss is in KiB


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--s2s", default=os.path.join(ROOT, "target", "release", "s2s"))
    ap.add_argument("--copy-count", type=int, default=4000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-scaling-")
    m30 = os.path.join(ROOT, "configs", "multi30k.toml")
    data = [f"data.train_path={args.data}/multi30k-en-fr.train.tsv", f"data.valid_path={args.data}/multi30k-en-fr.valid.tsv"]
    tok = os.path.join(work, "tok.json")
    subprocess.run([args.s2s, "tokenizer", "train", m30, "--out", tok] + sum((["--set", s] for s in data), []),
                   check=True, stdout=subprocess.DEVNULL)
    rows = []
    for L in (10, 25, 50):
        sets = data + [f"data.max_length={L}", f"data.tokenizer_path={tok}", f"model.max_decode_length={L + 10}"]
        rows.append((f"Multi30k, max_length {L}", *run(args.s2s, m30, sets, work)))
    copy = os.path.join(ROOT, "configs", "reverse.toml")
    for L in (25, 50, 100):
        sets = ["data.dataset=\"copy\"", f"data.synthetic_count={args.copy_count}", "data.synthetic_min_length=3",
                f"data.synthetic_max_length={L}", f"data.max_length={L + 1}", f"model.max_decode_length={L + 1}",
                "model.attention=\"bahdanau\"", "model.hidden_size=256", "model.embedding_size=256",
                "train.batch_size=64", "data.length_bucketing=false"]
        rows.append((f"copy task, up to {L} symbols ({args.copy_count} sequences)", *run(args.s2s, copy, sets, work)))
    print("| data | steps | target tokens/epoch | s per epoch (train) | valid s | tokens/s | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, wall, rss, r in rows:
        tokens = float(r["tokens_per_s"]) * float(r["epoch_s"])
        valid = float(r["elapsed_s"]) - float(r["epoch_s"])
        print(f"| {name} | {int(r['step'])} steps | {tokens:,.0f} | {float(r['epoch_s']):.1f} | {valid:.1f} | "
              f"{float(r['tokens_per_s']):,.0f} | {rss:,.0f} MiB |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
