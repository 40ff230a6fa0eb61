#!/usr/bin/env python3
"""Where a decoding command's time goes: `perf record` (DWARF call graphs) of one command,
then the share of samples inside each part of the decoder (inclusive: a part's callees
count towards it), over every thread.

    python3 scripts/profile_decode.py -- target/release/s2s translate RUN --beam 5 < SOURCES

The parts are the graph-free Transformer decoder's functions (`crates/model/src/transformer/
inference.rs`, kept out of line for this) and the shared search's; for an older binary
(the candle decoder) pass --candle to look for candle's ops instead. Needs `perf`
(linux-perf). Not a test: CI does not run it.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

# (label, regular expression over perf's symbol names), first match wins per line.
GRAPH_FREE = [
    ("whole decoding (search + steps)", r"search_batch|batched::greedy\b|decode::greedy"),
    ("encoder (graph-free, or candle's before 1600b68)", r"inference::encoder::encode\b|Transformer::encode\b"),
    ("  of which its self-attention", r"inference::encoder::self_attention"),
    ("decoder self-attention over the cache", r"Decoder::self_attention"),
    ("decoder cross-attention over the memory", r"Decoder::cross_attention"),
    ("products (encoder and decoder), this thread's", r"inference::linear\b|inference::Decoder::linear\b"),
    ("panel products, both threads (every product)", r"panels::Panels::product_into"),
    ("waiting for the other thread (self time, spinning)", r"self:spinning_helper::(serve|Helper<T>::join)"),
    ("output layer (logits, log-softmax, top-k)", r"Decoder::output_layer|Decoder::target_log_probs"),
    ("  of which log-softmax and top-k", r"top_k_log_softmax|max_and_log_sum_exp"),
    ("layer norms", r"inference::layer_norm"),
    ("choosing survivors (select)", r"BatchState>::select"),
    ("allocation (page clearing, memset)", r"clear_page|memset"),
    ("teacher-forced loss pass (eval only)", r"part_loss|forced_nll"),
]
CANDLE = [
    ("whole decoding (search + steps)", r"BeamSearch::search\b|greedy_with"),
    ("encoder", r"Transformer::encode\b"),
    ("decoder layer steps", r"DecoderLayer::step"),
    ("self-attention step (with cache concatenation)", r"self_attention_step"),
    ("cache concatenation", r"Tensor::cat"),
    ("cross-attention", r"MultiHeadAttention::cross_attention"),
    ("output layer: logits", r"Transformer::logits"),
    ("log-softmax", r"log_softmax"),
    ("top-k", r"beam::top_k|batched::top_k"),
    ("choosing survivors (index_select)", r"select_rows|index_select"),
    ("to_vec (tensors to host vectors)", r"to_vec2|to_vec1"),
    ("allocation (page clearing, memset)", r"clear_page|memset"),
    ("teacher-forced loss pass (eval only)", r"part_loss"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candle", action="store_true", help="the parts of the candle decoder (older binaries)")
    ap.add_argument("--freq", type=int, default=400)
    ap.add_argument("command", nargs="+")
    args = ap.parse_args()
    parts = CANDLE if args.candle else GRAPH_FREE
    data = tempfile.mktemp(suffix=".perf")
    subprocess.run(["perf", "record", "-q", "-F", str(args.freq), "--call-graph", "dwarf,32768", "-o", data,
                    "--", *args.command], check=True, stdout=subprocess.DEVNULL)
    report = subprocess.run(["perf", "report", "-i", data, "--children", "--stdio", "-q",
                             "-g", "none", "--percent-limit", "0.1"], capture_output=True, text=True).stdout
    os.unlink(data)
    best = {}
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\S+\s+\S+\s+\[.\]\s+(.*)", line)
        if not m:
            m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+\S+\s+\S+\s+\[k\]\s+(.*)", line)
        if not m:
            continue
        children, own, symbol = float(m.group(1)), float(m.group(2)), m.group(3)
        for label, pattern in parts:
            # A pattern that starts with "self:" counts the symbol's own samples only.
            share = own if pattern.startswith("self:") else children
            if re.search(pattern.removeprefix("self:"), symbol):
                best[label] = best.get(label, 0.0) + share if pattern.startswith("self:") else max(best.get(label, 0.0), share)
                break
    print(f"share of all samples (both threads), {' '.join(args.command)}")
    for label, _ in parts:
        print(f"  {label:55} {best.get(label, 0.0):5.1f} %")


if __name__ == "__main__":
    sys.exit(main())
