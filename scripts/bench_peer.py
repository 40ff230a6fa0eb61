#!/usr/bin/env python3
"""s2s against JoeyNMT 2.3 on Multi30k en->fr, side by side in one script: the same data,
model sizes and number of epochs, whole processes, alternating runs, medians. Prints a
markdown table and writes JSON. `--family gru` (the default): bidirectional GRU 256,
Bahdanau attention (JoeyNMT's rnn_gru256.yaml against configs/multi30k.toml);
`--family transformer`: 3+3 layers, 4 heads, d_model 256, ff 1024, pre-norm
(transformer_small_w400.yaml against configs/multi30k-transformer.toml). Both use BPE 8k
joint; `--train-pairs N` trains both on the first N training pairs (validation on all
1,014) to make a round shorter; s2s then reads the tokenizer learned on all of them, as
JoeyNMT reads its SentencePiece model. `--decode --joey-model DIR --s2s-run RUN` times only
greedy decoding of the validation set by two trained models.

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


FAMILIES = {
    "gru": ("rnn_gru256.yaml", "multi30k.toml"),
    "transformer": ("transformer_small_w400.yaml", "multi30k-transformer.toml"),
}


def joey_config(args, work):
    """JoeyNMT's config for the family; with --train-pairs, a copy reading a training file
    cut to that many pairs."""
    cfg = os.path.join(args.joey_work, "configs", FAMILIES[args.family][0])
    if not args.train_pairs:
        return cfg
    data = os.path.join(work, "joey-data")
    os.makedirs(data, exist_ok=True)
    for side in ("en", "fr"):
        lines = open(os.path.join(args.joey_work, "data", f"train.{side}")).readlines()[: args.train_pairs]
        open(os.path.join(data, f"train.{side}"), "w").writelines(lines)
    text = open(cfg).read().replace(os.path.join(os.path.abspath(args.joey_work), "data", "train"), os.path.join(data, "train"))
    # Validation (which run_timed.py's budget counts epochs by) at each shorter epoch's end.
    updates = -(-args.train_pairs // 64)
    text = re.sub(r"validation_freq: *\d+", f"validation_freq: {updates}", text)
    text = re.sub(r"logging_freq: *\d+", f"logging_freq: {max(1, updates // 2)}", text)
    out = os.path.join(work, "joey-" + os.path.basename(cfg))
    open(out, "w").write(text)
    return out


def s2s_data(args, work):
    """--set overrides for the data: the training TSV (maybe cut) and, when cut, the BPE
    tokenizer learned on every training pair."""
    train = f"{args.data}/multi30k-en-fr.train.tsv"
    sets = ["--set", f"data.valid_path={args.data}/multi30k-en-fr.valid.tsv"]
    if args.train_pairs:
        cut = os.path.join(work, "train-cut.tsv")
        open(cut, "w").writelines(open(train).readlines()[: args.train_pairs])
        tok = os.path.join(work, "tokenizer.json")
        cfg = os.path.join(ROOT, "configs", FAMILIES[args.family][1])
        subprocess.run([args.s2s, "tokenizer", "train", cfg, "--set", f"data.train_path={train}", *sets, "--out", tok],
                       check=True, stdout=subprocess.DEVNULL)
        return ["--set", f"data.train_path={cut}", "--set", f"data.tokenizer_path={tok}", *sets]
    return ["--set", f"data.train_path={train}", *sets]


def joey(args, work, epochs, log):
    cfg = args.joey_cfg
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
            "epoch_s": statistics.mean(e["epoch_wall_s"] for e in ep),
            "valid_s": statistics.mean(e["valid_s"] for e in ep), "valid_bleu": float(bleus[-1])}


def s2s(args, work, epochs, log):
    out = os.path.join(work, "s2s")
    shutil.rmtree(out, ignore_errors=True)
    # JoeyNMT's configs batch 64 sentences; s2s does the same here whatever its config says
    # (configs/multi30k.toml trains on 32: as fast an epoch here, twice the updates).
    cmd = [args.s2s, "run", os.path.join(ROOT, "configs", FAMILIES[args.family][1]), *args.s2s_data,
           "--set", f"train.epochs={epochs}", "--set", f"run.output_dir={out}", "--set", "run.threads=2",
           "--set", "train.batch_size=64", "--set", "train.batch_tokens=0"]
    wall, rss = timed(cmd, log=log)
    run = glob.glob(os.path.join(out, "*"))[0]
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    # Validation (greedy decoding of the validation set, scoring, the report) is what an
    # epoch's elapsed time adds to its training time.
    elapsed = [float(r["elapsed_s"]) for r in rows]
    valid = [e - p - float(r["epoch_s"]) for r, e, p in zip(rows, elapsed, [0.0] + elapsed[:-1])]
    return {"wall_s": wall, "peak_rss": rss, "epochs": len(rows), "epoch_s": elapsed[-1] / len(rows),
            "valid_s": statistics.mean(valid), "valid_bleu": float(rows[-1]["valid_bleu"])}


def decode_round(args, work, r):
    """One round of greedy decoding of the 1,014 validation sentences by trained models,
    whole processes: `joeynmt translate` (its model folder, beam 1) and `s2s eval` (beam 1)."""
    cfg = os.path.join(work, "joey-translate.yaml")
    text = open(os.path.join(args.joey_model, "config.yaml")).read()
    text = re.sub(r"beam_size: *\d+", "beam_size: 1", text)
    text = re.sub(r'model_dir: *"[^"]*"', f'model_dir: "{os.path.abspath(args.joey_model)}"', text)
    open(cfg, "w").write(text)
    src = os.path.join(args.joey_work, "data", "valid.en")
    out = {}
    t0 = time.time()
    with open(src) as stdin, open(os.path.join(work, f"joey-hyps-{r}.txt"), "w") as stdout:
        p = subprocess.Popen([args.joey_python, "-m", "joeynmt", "translate", cfg], stdin=stdin, stdout=stdout,
                             stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="2"))
        _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("joeynmt translate failed")
    out["joeynmt"] = {"wall_s": time.time() - t0, "peak_rss": usage.ru_maxrss * 1024}
    cmd = [args.s2s, "eval", args.s2s_run, "--split", "valid", "--beam", "1", "--checkpoint", args.s2s_checkpoint,
           "--json"]
    wall, rss = timed(cmd, log=os.path.join(work, f"s2s-eval-{r}.json"))
    out["s2s"] = {"wall_s": wall, "peak_rss": rss}
    return out


def decode_bench(args, work):
    rounds = [decode_round(args, work, r) for r in range(args.rounds)]
    for i, r in enumerate(rounds):
        print(f"round {i + 1}: {json.dumps(r)}", flush=True)
    med = {n: statistics.median(r[n]["wall_s"] for r in rounds) for n in ("joeynmt", "s2s")}
    print(f"\ngreedy decoding of the validation set, {args.rounds} alternating rounds, whole processes, medians: "
          f"JoeyNMT {med['joeynmt']:.1f} s, s2s {med['s2s']:.1f} s: s2s {med['joeynmt'] / med['s2s']:.2f}x faster")
    json.dump({"decode_rounds": rounds, "medians": med}, open(args.out, "w"), indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--joey-python", required=True)
    ap.add_argument("--joey-work", required=True)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--s2s", default=os.path.join(ROOT, "target", "release", "s2s"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--family", choices=sorted(FAMILIES), default="gru")
    ap.add_argument("--train-pairs", type=int, default=0, help="train on the first N pairs only (0 = all)")
    ap.add_argument("--out", default="bench-peer.json")
    ap.add_argument("--decode", action="store_true",
                    help="only time greedy decoding of the validation set by trained models: "
                         "--joey-model DIR against --s2s-run RUN")
    ap.add_argument("--joey-model", help="a JoeyNMT model folder (with --decode)")
    ap.add_argument("--s2s-run", help="an s2s run folder (with --decode)")
    ap.add_argument("--s2s-checkpoint", default="best", help="its checkpoint (with --decode)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-peer-")
    if args.decode:
        return decode_bench(args, work)
    args.joey_cfg = joey_config(args, work)
    args.s2s_data = s2s_data(args, work)
    results = {"joeynmt": [], "s2s": []}
    for r in range(args.rounds):
        for name, fn in (("joeynmt", joey), ("s2s", s2s)):
            res = fn(args, work, args.epochs, os.path.join(work, f"{name}-{r}.log"))
            results[name].append(res)
            print(f"round {r + 1}: {name}: {json.dumps(res)}", flush=True)
    med = {n: {k: statistics.median(x[k] for x in v) for k in ("wall_s", "peak_rss", "epoch_s", "valid_s")}
           for n, v in results.items()}
    j, s = med["joeynmt"], med["s2s"]
    pairs = f"the first {args.train_pairs} training pairs" if args.train_pairs else "all training pairs"
    print(f"\n{args.family}: {args.rounds} alternating rounds of {args.epochs} epoch(s) on {pairs}, medians:\n")
    print("| | whole process (s) | s per epoch (train + valid) | greedy valid (s) | peak RSS | valid BLEU (last epoch) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in ("joeynmt", "s2s"):
        bleus = " / ".join(f"{x['valid_bleu']:.1f}" for x in results[n])
        print(f"| {n} | {med[n]['wall_s']:.1f} | {med[n]['epoch_s']:.1f} | {med[n]['valid_s']:.1f} | "
              f"{med[n]['peak_rss'] / 2**30:.2f} GiB | {bleus} |")
    train_j, train_s = j["epoch_s"] - j["valid_s"], s["epoch_s"] - s["valid_s"]
    print(f"\ns2s is {j['wall_s'] / s['wall_s']:.2f}x faster (whole process), {train_j / train_s:.2f}x in training, "
          f"{j['valid_s'] / s['valid_s']:.2f}x in greedy validation, with {s['peak_rss'] / j['peak_rss']:.2f}x the peak memory")
    json.dump({"rounds": results, "medians": med}, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
