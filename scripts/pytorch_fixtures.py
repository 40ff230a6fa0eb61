#!/usr/bin/env python3
"""Writes crates/model/src/testdata.rs: PyTorch's figures for the model numerics tests.

Run from the repository root (needs `pip install torch`):
    python3 scripts/pytorch_fixtures.py > crates/model/src/testdata.rs

Every parameter is filled by the same formula on both sides (`fill` here, `fill` in
crates/model/src/tests.rs), so the test compares PyTorch's and candle's arithmetic on
identical weights. The models mirror shared/bench/torch_ref.py (Bahdanau decoder,
old-notebook location decoder) plus the Luong scores and PAD masking used by s2s, and
the NMT recipe's options (`model.bridge`, `model.input_feeding`, `model.tie_embeddings`).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)
SOS, EOS, PAD = 0, 1, 2
E, H, SV, TV, L = 3, 4, 7, 6, 6


def fill(name, p):
    c = (sum(name.encode()) % 17) * 0.1
    n = p.numel()
    vals = torch.tensor([0.3 * math.sin(0.7 * i + c) for i in range(n)], dtype=torch.float32)
    with torch.no_grad():
        p.copy_(vals.reshape(p.shape))


class Enc(nn.Module):
    def __init__(self, bidir):
        super().__init__()
        self.embedding = nn.Embedding(SV, E)
        self.gru = nn.GRU(E, H, batch_first=True, bidirectional=bidir)
        self.bidir = bidir

    def forward(self, src, lens):
        """Outputs (directions summed), the summed final state, and the directions' final
        states side by side (what the bridge reads)."""
        x = self.embedding(src)
        packed = nn.utils.rnn.pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        out, h = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        if self.bidir:
            out = out[..., :H] + out[..., H:]
            return out, h[0] + h[1], torch.cat((h[0], h[1]), 1)
        return out, h[0], h[0]


class Attn(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        if kind == "location":
            self.attn = nn.Linear(E + H, L)
        elif kind == "bahdanau":
            self.wa, self.ua, self.va = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, 1)
        elif kind == "luong-general":
            self.w = nn.Linear(H, H, bias=False)

    def scores(self, e, h, outs):
        s = outs.size(1)
        if self.kind == "location":
            return self.attn(torch.cat((e, h), 1))[:, :s]
        if self.kind == "bahdanau":
            return self.va(torch.tanh(self.wa(h).unsqueeze(1) + self.ua(outs))).squeeze(2)
        if self.kind == "luong-dot":
            return torch.bmm(outs, h.unsqueeze(2)).squeeze(2)
        return torch.bmm(self.w(outs), h.unsqueeze(2)).squeeze(2)


class Dec(nn.Module):
    def __init__(self, kind, input_feeding=False, tie=False):
        super().__init__()
        self.kind, self.input_feeding = kind, input_feeding
        self.embedding = nn.Embedding(TV, E)
        self.attention = Attn(kind)
        if kind == "location":
            self.attn_combine = nn.Linear(E + H, H)
            self.gru = nn.GRU(H, H, batch_first=True)
        else:
            self.gru = nn.GRU(E + H + (H if input_feeding else 0), H, batch_first=True)
        if input_feeding:
            self.att_vector = nn.Linear(2 * H, H)
        self.out = nn.Linear(H, TV)
        if tie:
            self.out.weight = self.embedding.weight

    def step(self, tok, h, o, outs, mask):
        """One step from state (h, o); o is the previous attentional vector (input feeding)."""
        e = self.embedding(tok)
        sc = self.attention.scores(e, h, outs).masked_fill(~mask, float("-inf"))
        w = F.softmax(sc, dim=1)
        ctx = torch.bmm(w.unsqueeze(1), outs).squeeze(1)
        x = torch.cat((e, ctx, o), 1) if self.input_feeding else torch.cat((e, ctx), 1)
        if self.kind == "location":
            x = F.relu(self.attn_combine(x))
        _, h = self.gru(x.unsqueeze(1), h.unsqueeze(0))
        h = h[0]
        o = torch.tanh(self.att_vector(torch.cat((h, ctx), 1))) if self.input_feeding else h
        return h, o, w


class Model(nn.Module):
    def __init__(self, kind, bidir, bridge=False, input_feeding=False, tie=False):
        super().__init__()
        self.encoder, self.decoder = Enc(bidir), Dec(kind, input_feeding, tie)
        if bridge:
            self.bridge = nn.Linear((2 if bidir else 1) * H, H)


def case(kind, bidir, bridge=False, input_feeding=False, tie=False):
    torch.manual_seed(0)
    m = Model(kind, bidir, bridge, input_feeding, tie)
    for name, p in m.named_parameters():
        fill(name, p)
    if tie:  # s2s names the tied tensor after the output layer
        fill("decoder.out.weight", m.decoder.out.weight)
    src = torch.tensor([[4, 5, 6, EOS], [5, 4, EOS, PAD]])
    lens = torch.tensor([4, 3])
    tgt = torch.tensor([[3, 4, 5, EOS], [5, EOS, PAD, PAD]])
    mask = src != PAD
    outs, h, finals = m.encoder(src, lens)
    if bridge:
        h = torch.tanh(m.bridge(finals))
    o = torch.zeros_like(h)
    prev = torch.full((2,), SOS)
    states, first_w = [], None
    for t in range(tgt.size(1)):
        h, o, w = m.decoder.step(prev, h, o, outs, mask)
        first_w = w if first_w is None else first_w
        states.append(o)
        prev = tgt[:, t]
    logp = F.log_softmax(m.decoder.out(torch.stack(states, 1)), -1)
    loss = F.nll_loss(logp.reshape(-1, TV), tgt.reshape(-1), ignore_index=PAD)
    loss.backward()
    gsq = sum(float((p.grad ** 2).sum()) for p in m.parameters() if p.grad is not None)
    names = sorted(n for n, _ in m.named_parameters())
    return float(loss), gsq, first_w.flatten().tolist(), names


def gru_step():
    g = nn.GRU(2, 3)
    for name, p in g.named_parameters():
        fill(name, p)
    x = torch.tensor([[[0.5, -1.0]]])
    h = torch.tensor([[[0.1, 0.2, -0.3]]])
    return g(x, h)[1].flatten().tolist()


def rs(v):
    return "[" + ", ".join(f"{x:.8e}" for x in v) + "]"


print("//! Generated by `python3 scripts/pytorch_fixtures.py` (PyTorch", torch.__version__ + "); do not edit.")
print()
print(f"pub const GRU_STEP: [f32; 3] = {rs(gru_step())};")
print()
print("/// (attention, bidirectional, loss, sum of squared gradients, first-step attention weights (2x4))")
print("pub const CASES: &[(&str, bool, f32, f32, [f32; 8])] = &[")
for kind, bidir in [("location", False), ("bahdanau", False), ("luong-dot", False),
                    ("luong-general", False), ("bahdanau", True)]:
    loss, gsq, w, names = case(kind, bidir)
    print(f"    (\"{kind}\", {str(bidir).lower()}, {loss:.8e}, {gsq:.8e}, {rs(w)}),")
print("];")
print()
E = H  # tied embeddings need embedding_size = hidden_size
print("/// Bahdanau attention, embedding size = hidden size = 4: (bidirectional, bridge,")
print("/// input_feeding, tie_embeddings, loss, sum of squared gradients, first-step attention (2x4))")
print("#[allow(clippy::type_complexity)] // a fixture table, read once\npub const RECIPE_CASES: &[(bool, bool, bool, bool, f32, f32, [f32; 8])] = &[")
for bidir, bridge, feed, tie in [(False, False, False, False), (True, True, False, False), (False, True, False, False),
                                 (False, False, True, False), (False, False, False, True), (True, True, True, True)]:
    loss, gsq, w, names = case("bahdanau", bidir, bridge, feed, tie)
    flags = ", ".join(str(x).lower() for x in (bidir, bridge, feed, tie))
    print(f"    ({flags}, {loss:.8e}, {gsq:.8e}, {rs(w)}),")
print("];")
