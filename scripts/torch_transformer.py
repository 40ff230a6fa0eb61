#!/usr/bin/env python3
"""Loads a Transformer run's checkpoint into PyTorch and translates its report sentences
greedily, side by side with `s2s translate --beam 1`: the parameter names are
torch.nn.Transformer's, so the checkpoint loads with `load_state_dict(strict=True)`.

    python3 scripts/torch_transformer.py RUN [--checkpoint best] [--s2s target/release/s2s]

Needs torch and tokenizers (`pip install torch tokenizers`). The model is built from the
run's config.toml: nn.TransformerEncoder/Decoder layers (ReLU, batch_first, norm_first
for norm = "pre") with a final LayerNorm each, embeddings scaled by sqrt(d_model) plus
sinusoidal or learned positions, and the output layer (the target embedding when tied).
The source is tokenized with the run's own tokenizer files and ends with EOS (id 1);
decoding starts from SOS (id 0). Exits 1 if any translation differs.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tomllib

import numpy as np
import torch
import torch.nn as nn
from tokenizers import Tokenizer

SOS, EOS = 0, 1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_safetensors(path):
    """{name: tensor} from a safetensors file (f32 only), without the safetensors package."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            sys.exit(f"{name}: dtype {meta['dtype']} (expected F32)")
        a, b = meta["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").copy()).reshape(meta["shape"])
    return out


def sinusoids(length, d):
    pe = torch.zeros(length, d)
    for p in range(length):
        for i in range(d):
            angle = p / 10000 ** ((2 * (i // 2)) / d)
            pe[p, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    return pe


class Seq2SeqTransformer(nn.Module):
    def __init__(self, m, src_vocab, tgt_vocab, slots):
        super().__init__()
        d, heads = m["hidden_size"], m["heads"]
        ff = m.get("ff_size", 0) or 4 * d
        enc_layers = m["encoder_layers"]
        dec_layers = m.get("decoder_layers", 0) or enc_layers
        pre = m.get("norm", "pre") == "pre"
        self.tie = m.get("tie_embeddings", "none")
        self.d = d
        if self.tie != "all":
            self.src_embedding = nn.Embedding(src_vocab, d)
        self.tgt_embedding = nn.Embedding(tgt_vocab, d)
        if self.tie == "none":
            self.output = nn.Linear(d, tgt_vocab, bias=False)
        self.learned = m.get("positions", "sinusoidal") == "learned"
        if self.learned:
            self.src_positions = nn.Embedding(slots, d)
            self.tgt_positions = nn.Embedding(slots, d)
        else:
            self.register_buffer("table", sinusoids(max(slots, 512), d), persistent=False)
        layer = dict(d_model=d, nhead=heads, dim_feedforward=ff, dropout=0.0, batch_first=True, norm_first=pre)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), enc_layers, norm=nn.LayerNorm(d),
                                             enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), dec_layers, norm=nn.LayerNorm(d))

    def embed(self, ids, side):
        if side == "src":
            table = self.tgt_embedding if self.tie == "all" else self.src_embedding
        else:
            table = self.tgt_embedding
        x = table(ids) * math.sqrt(self.d)
        t = ids.shape[1]
        if self.learned:
            pos = (self.src_positions if side == "src" else self.tgt_positions).weight[:t]
        else:
            pos = self.table[:t]
        return x + pos

    def logits(self, h):
        w = self.output.weight if self.tie == "none" else self.tgt_embedding.weight
        return h @ w.t()

    @torch.no_grad()
    def greedy(self, src, steps):
        memory = self.encoder(self.embed(src, "src"))
        ids = [SOS]
        out = []
        for _ in range(steps):
            tgt = torch.tensor([ids])
            mask = nn.Transformer.generate_square_subsequent_mask(len(ids))
            h = self.decoder(self.embed(tgt, "tgt"), memory, tgt_mask=mask, tgt_is_causal=True)
            nxt = int(self.logits(h[0, -1]).argmax())
            if nxt == EOS:
                break
            out.append(nxt)
            ids.append(nxt)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--checkpoint", default="best")
    ap.add_argument("--s2s", default=os.path.join(ROOT, "target", "release", "s2s"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = tomllib.load(open(os.path.join(args.run, "config.toml"), "rb"))
    m = cfg["model"]
    if m.get("architecture") != "transformer":
        sys.exit(f"{args.run}: model.architecture is {m.get('architecture')!r}, not \"transformer\"")
    ck = os.path.join(args.run, "checkpoints", args.checkpoint)
    if not os.path.isdir(ck):
        sys.exit(f"no checkpoint folder {ck}")
    state = read_safetensors(os.path.join(ck, "model.safetensors"))
    src_tok = Tokenizer.from_file(os.path.join(args.run, "tokenizer", "source.json"))
    tgt_tok = Tokenizer.from_file(os.path.join(args.run, "tokenizer", "target.json"))
    tgt_vocab = state["tgt_embedding.weight"].shape[0]
    src_vocab = state["src_embedding.weight"].shape[0] if "src_embedding.weight" in state else tgt_vocab
    slots = max(cfg["data"]["max_length"], m.get("max_decode_length", 0), 1)
    model = Seq2SeqTransformer(m, src_vocab, tgt_vocab, slots).eval()
    model.load_state_dict(state, strict=True)
    print(f"loaded {len(state)} tensors ({sum(t.numel() for t in state.values()):,} parameters) from {ck} "
          f"into torch {torch.__version__} nn.TransformerEncoder/Decoder, strict=True")
    steps = m.get("max_decode_length", 0) or cfg["data"]["max_length"]
    sentences = cfg["report"]["sentences"]
    differ = 0
    for s in sentences:
        src = src_tok.encode(s, add_special_tokens=False).ids + [EOS]
        ids = model.greedy(torch.tensor([src]), steps)
        ours = tgt_tok.decode(ids, skip_special_tokens=True)
        theirs = subprocess.run([args.s2s, "translate", args.run, "--checkpoint", args.checkpoint, "--beam", "1", s],
                                check=True, capture_output=True, text=True).stdout.strip()
        same = ours == theirs
        differ += not same
        print(f"> {s}\n  torch: {ours}\n  s2s:   {theirs}\n  {'identical' if same else 'DIFFERENT'}")
    print(f"{len(sentences) - differ} of {len(sentences)} report sentences translated identically")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
