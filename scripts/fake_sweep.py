#!/usr/bin/env python3
"""Make a sweep folder of N run folders without training, to time `s2s list` and
`s2s compare` at cluster scale (docs/sweeps.md: "Sweeps on a Slurm cluster").

Each run is a copy of a real, trained TEMPLATE run folder (config.toml, run.json,
metrics.csv, loss.svg, attention/), given its own learning rate and hidden size in
config.toml and its own, perturbed losses in metrics.csv. Checkpoints are left out: neither
`list` nor `compare` reads them, and 1,000 copies would take gigabytes.

  s2s run configs/base.toml --set train.epochs=100 --set run.output_dir=/tmp/tmpl
  python3 scripts/fake_sweep.py /tmp/tmpl/base-* /tmp/exp --runs 1000
  time s2s list /tmp/exp && time s2s compare /tmp/exp/sweep-fake-*
"""

import argparse
import json
import random
import re
import shutil
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("template", type=Path, help="a trained run folder to copy")
    ap.add_argument("out", type=Path, help="the experiments folder to put the sweep folder in")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    sweep = args.out / "sweep-fake-20261202-000000"
    if sweep.exists():
        shutil.rmtree(sweep)
    (sweep / "runs").mkdir(parents=True)
    (sweep / "logs").mkdir()
    (sweep / "points").mkdir()
    config = (args.template / "config.toml").read_text()
    info = json.loads((args.template / "run.json").read_text())
    metrics = (args.template / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    loss_col = header.index("train_loss")
    points = []
    for i in range(args.runs):
        lr = round(0.001 * (1 + i % 20), 4)
        hidden = 16 * (1 + i // 20 % 50)
        label = f"learning_rate={lr}-hidden_size={hidden}-i={i}"
        name = f"fake-{label}"
        run = sweep / "runs" / name
        run.mkdir()
        text = re.sub(r"(?m)^learning_rate = .*$", f"learning_rate = {lr}", config)
        text = re.sub(r"(?m)^hidden_size = .*$", f"hidden_size = {hidden}", text)
        text = re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', text)
        (run / "config.toml").write_text(text)
        info["name"] = name
        (run / "run.json").write_text(json.dumps(info, indent=2))
        scale = rng.uniform(0.5, 1.5)
        rows = [metrics[0]]
        for line in metrics[1:]:
            cells = line.split(",")
            cells[loss_col] = f"{float(cells[loss_col]) * scale:.6f}"
            rows.append(",".join(cells))
        (run / "metrics.csv").write_text("\n".join(rows) + "\n")
        for f in ["loss.svg", "translations.txt", "report.html"]:
            if (args.template / f).exists():
                shutil.copy(args.template / f, run / f)
        shutil.copytree(args.template / "attention", run / "attention")
        points.append(
            {
                "index": i,
                "label": label,
                "overrides": [f"train.learning_rate={lr}", f"model.hidden_size={hidden}", f"run.name={name}"],
                "run": f"runs/{name}",
                "gpu": False,
            }
        )
    (sweep / "points.json").write_text(json.dumps({"config": str(args.template / "config.toml"), "points": points}))
    print(sweep)


if __name__ == "__main__":
    main()
