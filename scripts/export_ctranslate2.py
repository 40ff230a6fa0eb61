#!/usr/bin/env python3
"""Writes a CTranslate2 model with ctranslate2's own spec API (`TransformerSpec`), from
what `s2s export RUN --to ctranslate2 OUT` prepared: `s2s export` runs this script (it is
compiled into the binary) with the Python that has ctranslate2.

    python3 scripts/export_ctranslate2.py STAGING OUT

STAGING holds `variables.safetensors` (f32 tensors named by the spec attribute they fill,
dot-separated, list items by index: `decoder.layer.0.attention.linear.1.weight`), and
`export.json`: the spec's options (layers, heads, pre_norm, layer_norm_epsilon), the
special tokens and the two vocabularies (token strings in id order). The mapping from the
s2s checkpoint is the model family's (crates/model/src/transformer/export.rs); this
script only places the tensors, so a change of CTranslate2's file format is the package's
business. OUT (which must exist) receives model.bin, config.json and the vocabularies.
"""
import json
import os
import struct
import sys

try:
    import numpy as np
    import ctranslate2
    from ctranslate2.specs import transformer_spec
except ImportError as e:
    sys.exit(f"the ctranslate2 Python package is needed to export (pip install ctranslate2): {e}")


def read_safetensors(path):
    """{name: float32 array} of a safetensors file holding F32 tensors only."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        body = f.read()
    arrays = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {meta['dtype']}, expected F32")
        start, end = meta["data_offsets"]
        arrays[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(meta["shape"]).copy()
    return arrays


def place(spec, path, value):
    """Sets the spec attribute that `path` names (list items by index)."""
    *parents, leaf = path.split(".")
    node = spec
    for part in parents:
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    if not hasattr(node, leaf):
        sys.exit(f"CTranslate2 {ctranslate2.__version__}'s TransformerSpec has no variable {path}")
    setattr(node, leaf, value)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    staging, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(staging, "export.json"), encoding="utf-8") as f:
        meta = json.load(f)
    opts = meta["options"]
    # Built pre-norm so that both stacks get their final `layer_norm`, which a post-norm
    # s2s model has too (torch.nn.TransformerEncoder's `norm`); CTranslate2 applies a
    # stack's layer_norm whenever the model holds one, and the layers read `pre_norm`.
    spec = transformer_spec.TransformerSpec.from_config(
        (opts["encoder_layers"], opts["decoder_layers"]), opts["heads"], pre_norm=True
    )
    spec.encoder.pre_norm = opts["pre_norm"]
    spec.decoder.pre_norm = opts["pre_norm"]
    for name, value in read_safetensors(os.path.join(staging, "variables.safetensors")).items():
        place(spec, name, value)
    tokens = meta["tokens"]
    spec.config.bos_token = tokens["bos"]
    spec.config.eos_token = tokens["eos"]
    spec.config.unk_token = tokens["unk"]
    spec.config.decoder_start_token = tokens["bos"]
    # s2s ends every source with EOS.
    spec.config.add_source_eos = True
    spec.config.layer_norm_epsilon = opts["layer_norm_epsilon"]
    spec.register_source_vocabulary(meta["source_vocabulary"])
    spec.register_target_vocabulary(meta["target_vocabulary"])
    spec.validate()
    spec.optimize(quantization=None)
    spec.save(out)
    print(f"ctranslate2 {ctranslate2.__version__}: wrote {out}")


if __name__ == "__main__":
    main()
