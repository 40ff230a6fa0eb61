#!/usr/bin/env bash
# GPU smoke test for a `--features cuda` build of s2s (see the README's CUDA section).
#
# It trains configs/base.toml, a batched GRU config and the Transformer
# (configs/reverse-transformer.toml) for a few epochs on cuda and on cpu with the same
# binary and seed, checks that the per-epoch training losses agree within a tolerance, and
# prints training throughput (target tokens/s) on both devices.
#
# Usage:  bash scripts/gpu-smoke.sh [S2S COMMAND ...]
#   default command: target/release/s2s
#   on the lent GPU machine: bash scripts/gpu-smoke.sh bash .gpu/run-on-gpu.sh .gpu/s2s
# Environment:
#   SMOKE_DATA   TSV file for the batched run (Tatoeba format); without it the batched
#                run is the synthetic reverse task, which needs no data.
#   TOL          largest relative loss difference accepted (default 1e-3: float
#                reductions run in a different order on the GPU, and the gap grows
#                slowly with training).
#   EPOCHS       epochs per run (default 3).
set -uo pipefail
if [ $# -gt 0 ]; then S2S=("$@"); else S2S=(target/release/s2s); fi
TOL=${TOL:-1e-3}
EPOCHS=${EPOCHS:-3}
OUT=$(mktemp -d)/smoke
status=0

train() { # name device config extra...
  local name=$1 dev=$2 cfg=$3; shift 3
  "${S2S[@]}" run "$cfg" --set run.device="$dev" --set run.output_dir="$OUT/$name-$dev" \
    --set train.epochs="$EPOCHS" --set run.name="$name" "$@" > "$OUT/$name-$dev.log" 2>&1 \
    || { echo "  FAILED: $name on $dev:"; tail -3 "$OUT/$name-$dev.log" | sed 's/^/    /'; return 1; }
  ls -d "$OUT/$name-$dev"/*/ | head -1 > "$OUT/$name-$dev.dir"
}
dir() { cat "$OUT/$1.dir"; }

col() { # metrics.csv column by name
  awk -F, -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} {print $k}' "$1/metrics.csv"
}

compare() { # name cpu_dir gpu_dir
  paste <(col "$2" train_loss) <(col "$3" train_loss) | awk -v tol="$TOL" -v n="$1" '
    { d = $1 - $2; if (d < 0) d = -d; r = d / ($1 > 1e-12 ? $1 : 1e-12);
      printf "  %s epoch %d: cpu %.6f  cuda %.6f  rel diff %.2e\n", n, NR, $1, $2, r;
      if (r > tol) bad = 1 }
    END { if (bad) { print "  " n ": losses differ by more than " tol; exit 1 } }' || status=1
}

mkdir -p "$OUT"
echo "== notebook config (batch 1), $EPOCHS epochs"
if train base cpu configs/base.toml && train base cuda configs/base.toml; then
  compare base "$(dir base-cpu)" "$(dir base-cuda)"
else
  status=1
fi

if [ -n "${SMOKE_DATA:-}" ]; then
  echo "== batched config: tatoeba ($SMOKE_DATA), $EPOCHS epochs"
  batched=(configs/tatoeba.toml --set data.path="$SMOKE_DATA" --set train.validate_every=0)
else
  echo "== batched config: synthetic reverse task, $EPOCHS epochs"
  batched=(configs/reverse.toml --set train.validate_every=0)
fi
on_both() { # name config extra...: trains on both devices, compares losses and throughput
  local name=$1; shift
  if train "$name" cpu "$@" && train "$name" cuda "$@"; then
    local c g cpu_tps gpu_tps
    c=$(dir "$name-cpu"); g=$(dir "$name-cuda")
    compare "$name" "$c" "$g"
    cpu_tps=$(col "$c" tokens_per_s | tail -1); gpu_tps=$(col "$g" tokens_per_s | tail -1)
    echo "  throughput, last epoch: cpu $cpu_tps tokens/s, cuda $gpu_tps tokens/s" \
         "($(awk -v a="$gpu_tps" -v b="$cpu_tps" 'BEGIN{printf "%.2f", a/b}')x)"
  else
    status=1
  fi
}
on_both batched "${batched[@]}"
echo "== Transformer: synthetic reverse task, $EPOCHS epochs"
on_both transformer configs/reverse-transformer.toml --set train.validate_every=0
[ $status -eq 0 ] && echo "smoke test passed" || echo "smoke test FAILED"
exit $status
