#!/usr/bin/env python3
"""Writes crates/model/src/transformer/fixtures.json: PyTorch's figures for the Transformer
numerics tests (outputs and gradients of nn.MultiheadAttention, nn.TransformerEncoderLayer
and nn.TransformerDecoderLayer, both norm_first settings, on identical weights).

Run from the repository root (needs `pip install torch`):
    python3 scripts/transformer_fixtures.py > crates/model/src/transformer/fixtures.json

Every parameter is filled by `fill` (the same formula as crates/model/src/tests.rs and
crates/model/src/transformer/tests.rs), keyed by its state_dict name; inputs by `inputs`.
Each case backpropagates `sum(output * probe)` with a fixed probe and records the output,
the gradient of every input, and the gradient of every parameter by name.
"""
import json
import math

import torch
import torch.nn as nn

torch.set_default_dtype(torch.float32)
D, HEADS, FF, B, T, S = 8, 2, 16, 2, 3, 4
# Source lengths (the second row padded at its end) and the key padding mask (True = PAD).
SRC_LENGTHS = [4, 2]


def fill(name, p):
    c = (sum(name.encode()) % 17) * 0.1
    n = p.numel()
    vals = torch.tensor([0.3 * math.sin(0.7 * i + c) for i in range(n)], dtype=torch.float32)
    with torch.no_grad():
        p.copy_(vals.reshape(p.shape))


def inputs(name, shape):
    """Input values: the same formula with a different phase (`seed` in the Rust tests)."""
    n = math.prod(shape)
    c = (sum(name.encode()) % 13) * 0.3
    return torch.tensor([math.cos(0.37 * i + c) for i in range(n)], dtype=torch.float32).reshape(shape)


def probe(n):
    return torch.tensor([math.sin(0.91 * i + 0.5) for i in range(n)], dtype=torch.float32)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1)]


def pad_mask():
    return torch.tensor([[j >= l for j in range(S)] for l in SRC_LENGTHS])


def causal():
    return torch.triu(torch.full((T, T), float("-inf")), diagonal=1)


def run(module, args, kwargs, names):
    for name, p in module.named_parameters():
        fill(name, p)
    leaves = [a.clone().requires_grad_(True) for a in args]
    out = module(*leaves, **kwargs)
    if isinstance(out, tuple):
        out = out[0]
    loss = (out.reshape(-1) * probe(out.numel())).sum()
    loss.backward()
    return {
        "output": flat(out),
        "input_grads": {n: flat(l.grad) for n, l in zip(names, leaves)},
        "param_grads": {name: flat(p.grad) for name, p in module.named_parameters()},
    }


def main():
    torch.manual_seed(0)
    cases = {}
    mha = nn.MultiheadAttention(D, HEADS, dropout=0.0, batch_first=True)
    q, m = inputs("query", (B, T, D)), inputs("memory", (B, S, D))
    cases["mha_cross"] = run(mha, [q, m, m], {"key_padding_mask": pad_mask(), "need_weights": False}, ["query", "memory", "memory2"])
    mha = nn.MultiheadAttention(D, HEADS, dropout=0.0, batch_first=True)
    cases["mha_self_causal"] = run(mha, [q, q, q], {"attn_mask": causal(), "need_weights": False}, ["query", "q2", "q3"])
    for norm_first in (True, False):
        tag = "pre" if norm_first else "post"
        enc = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
        cases[f"encoder_{tag}"] = run(enc, [m], {"src_key_padding_mask": pad_mask()}, ["memory"])
        dec = nn.TransformerDecoderLayer(D, HEADS, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
        cases[f"decoder_{tag}"] = run(
            dec, [q, m], {"tgt_mask": causal(), "memory_key_padding_mask": pad_mask()}, ["query", "memory"]
        )
    meta = {"torch": torch.__version__, "d": D, "heads": HEADS, "ff": FF, "b": B, "t": T, "s": S, "src_lengths": SRC_LENGTHS}
    print(json.dumps({"meta": meta, "cases": cases}, indent=1))


if __name__ == "__main__":
    main()
