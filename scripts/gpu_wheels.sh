#!/usr/bin/env bash
# Prepare the GPU acceptance run on this machine (network needed), once per dependency change:
#
#   scripts/gpu_wheels.sh
#
# writes .gpu/ (git ignores it): wheels/ holds exactly the cp312 manylinux x86-64 wheels the run
# needs and the GPU machine lacks (scripts/gpu/wheels.py derives the list from the workspace's
# pyproject files and pins the versions this project's venv runs), pins.txt lists them, assets/
# holds the DABS demo's data files (rq-dabs fetch-assets). Then it
# prints what travels to the GPU machine (the checkout's tracked and untracked-not-ignored files
# plus .gpu) and fails if that exceeds 60 MiB. On the GPU machine, with .gpu carried along:
# scripts/gpu_acceptance.sh OUTDIR (docs/benchmarks.md, "GPU").
#
# RQ_PYTHON: the interpreter whose installed versions are pinned (default .venv/bin/python);
# RQ_GPU_DIR: where to write (default .gpu).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GPU_DIR=${RQ_GPU_DIR:-$ROOT/.gpu}
PY=${RQ_PYTHON:-$ROOT/.venv/bin/python}
LIMIT_MIB=60

if ! [ -x "$PY" ]; then
    echo "error: $PY not found: run ./dev setup first (the wheels are pinned to its versions)" >&2
    exit 1
fi
mkdir -p "$GPU_DIR/wheels"

"$PY" scripts/gpu/wheels.py pins > "$GPU_DIR/pins.txt.new"
mapfile -t pins < "$GPU_DIR/pins.txt.new"
platform_args=()
while read -r platform; do
    platform_args+=(--platform "$platform")
done < <("$PY" scripts/gpu/wheels.py platforms)

echo "[gpu_wheels] downloading ${#pins[@]} wheels into $GPU_DIR/wheels"
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 "${platform_args[@]}" \
    -d "$GPU_DIR/wheels" "${pins[@]}"
mv "$GPU_DIR/pins.txt.new" "$GPU_DIR/pins.txt"
"$PY" scripts/gpu/wheels.py check "$GPU_DIR/wheels" --pins "$GPU_DIR/pins.txt" --prune

# The DABS demo's pinned data files: `rq-dabs fetch-assets` keeps them in $RQ_ASSETS (default
# $RQ_CACHE/assets, ~/.cache/rq/assets; ./dev setup fills it). They are copied from there and
# verified in .gpu/assets (fetched only if the copy lacks one); the GPU run reads them there.
echo "[gpu_wheels] the DABS demo's assets into $GPU_DIR/assets"
assets_from=${RQ_ASSETS:-${RQ_CACHE:-$HOME/.cache/rq}/assets}
rm -rf "$GPU_DIR/assets"
mkdir -p "$GPU_DIR/assets"
if [ -d "$assets_from" ]; then
    cp -r "$assets_from"/. "$GPU_DIR/assets/"
fi
"$(dirname "$PY")/rq-dabs" fetch-assets "assets=$GPU_DIR/assets"

echo
echo "[gpu_wheels] what travels to the GPU machine:"
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
for wheel in "$GPU_DIR"/wheels/*.whl; do
    printf '  %8s MiB  %s\n' "$(mib "$(stat -c %s "$wheel")")" "$(basename "$wheel")"
done
gpu_bytes=$(du -sb "$GPU_DIR" | cut -f1)
# The working tree as the device tool sends it: tracked files and untracked ones git does not
# ignore (du prints one "total" per batch xargs makes; they are summed).
tree_bytes=$(git ls-files -z --cached --others --exclude-standard \
    | xargs -0 du -cb 2>/dev/null | awk '$2 == "total" { s += $1 } END { print s + 0 }')
total=$((gpu_bytes + tree_bytes))
echo "  $(mib "$gpu_bytes") MiB  $GPU_DIR (wheels, pins, assets)"
echo "  $(mib "$tree_bytes") MiB  the working tree (git ls-files, untracked files included)"
echo "  $(mib "$total") MiB  together; limit $LIMIT_MIB MiB"
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
    echo "error: $(mib "$total") MiB would travel, over the $LIMIT_MIB MiB limit" >&2
    exit 1
fi
echo
echo "[gpu_wheels] ready. On the GPU machine, from the checkout with .gpu/ beside it:"
echo "  scripts/gpu_acceptance.sh OUTDIR"
