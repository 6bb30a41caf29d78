#!/usr/bin/env bash
# The GPU acceptance run (docs/benchmarks.md, "GPU"): one command on a GPU machine without
# network, run from the checkout with the .gpu/ folder of scripts/gpu_wheels.sh beside it.
#
#   scripts/gpu_acceptance.sh OUTDIR            # install offline, then every step (<= 8 min)
#   scripts/gpu_acceptance.sh OUTDIR --dry-run  # the same end to end on CPU, tiny (~2 min)
#
# 1. install: the carried wheels into a temporary site folder (pip --no-index --no-deps
#    --target), then the workspace packages from the checkout (--no-build-isolation, building
#    rq-core's C kernel where a compiler is found); nothing is fetched (PIP_NO_INDEX=1 after);
#    the DABS demo reads its data files from .gpu/assets (RQ_ASSETS);
# 2. the steps of scripts/gpu/acceptance.py: pytest -m gpu, each app's quick demo on the GPU,
#    the quantizer benchmark, each app's paper model on synthetic batches with and without RQ,
#    each app's input pipeline against the GPU's rate.
#
# All output also goes to OUTDIR/acceptance.log, each step's to OUTDIR/logs/; the report is
# OUTDIR/summary.md. A failed step does not stop the others; the exit status is 1 if any
# failed. --dry-run uses this environment's Python and packages instead of installing
# (RQ_PYTHON overrides the interpreter; RQ_GPU_DIR the wheel folder, default .gpu).
set -euo pipefail

usage() {
    echo "usage: scripts/gpu_acceptance.sh OUTDIR [--dry-run]" >&2
    exit 2
}
OUTDIR=""
DRY_RUN=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        -h | --help) usage ;;
        -*)
            echo "error: unknown option $arg" >&2
            usage
            ;;
        *)
            [ -z "$OUTDIR" ] || usage
            OUTDIR=$arg
            ;;
    esac
done
[ -n "$OUTDIR" ] || usage

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GPU_DIR=${RQ_GPU_DIR:-$ROOT/.gpu}
mkdir -p "$OUTDIR/logs" "$OUTDIR/results"
OUTDIR=$(cd "$OUTDIR" && pwd)
rm -f "$OUTDIR"/results/*.json "$OUTDIR/summary.md"
exec > >(tee -a "$OUTDIR/acceptance.log") 2>&1

if [ -n "${RQ_PYTHON:-}" ]; then
    PY=$RQ_PYTHON
elif [ "$DRY_RUN" = 1 ] && [ -x "$ROOT/.venv/bin/python" ]; then
    PY=$ROOT/.venv/bin/python
elif [ -x /opt/torch/.venv/bin/python3 ]; then
    PY=/opt/torch/.venv/bin/python3
else
    PY=$(command -v python3)
fi
export RQ_CACHE=${RQ_CACHE:-$OUTDIR/cache}
export PYTHONUNBUFFERED=1
export MPLBACKEND=Agg
cd "$ROOT"
echo "[acceptance] $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $( ((DRY_RUN)) && echo 'dry run' || echo 'GPU run'), python $PY"
if command -v nvidia-smi > /dev/null; then
    nvidia-smi -L || true
fi

# ------------------------------------------------------------------------------ install
# Recorded as results/install.json like every other step (summary.md shows it).
record_install() { # STATUS TITLE SECONDS
    printf '{"name": "install", "title": "%s", "status": "%s", "seconds": %s, "log": "logs/install.log", "data": {}, "error": %s}\n' \
        "$2" "$1" "$3" "$([ "$1" = ok ] && echo null || echo '"see logs/install.log"')" \
        > "$OUTDIR/results/install.json"
}

# (Called in an `if`, where set -e does not act: every command says `|| return 1`.)
install_offline() {
    local site=$1 tools=$1/.build-tools sources=$1/.sources wheels=() members=()
    "$PY" "$ROOT/scripts/gpu/wheels.py" check "$GPU_DIR/wheels" --pins "$GPU_DIR/pins.txt" || return 1
    # The build tools go on PYTHONPATH for the workspace build only (see wheels.BUILD_TOOLS).
    "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
        --target "$tools" "$GPU_DIR"/wheels/setuptools-*.whl || return 1
    for wheel in "$GPU_DIR"/wheels/*.whl; do
        case "$(basename "$wheel")" in setuptools-*) ;; *) wheels+=("$wheel") ;; esac
    done
    # Built from copies: pip builds in the source folder and would leave build/ and *.egg-info
    # in the checkout.
    mkdir -p "$sources" || return 1
    for member in "$ROOT"/packages/*/ "$ROOT"/apps/*/; do
        [ -f "$member/pyproject.toml" ] || continue
        cp -r "${member%/}" "$sources/" || return 1
        members+=("$sources/$(basename "$member")")
    done
    # One pip call: a second one into the same --target would not add its console scripts.
    PYTHONPATH=$tools "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps \
        --no-build-isolation --no-compile --target "$site" "${wheels[@]}" "${members[@]}" || return 1
    PYTHONPATH=$site "$PY" -c 'from rq_core import quantize
print("rq_core._native (C kernel):", "built" if quantize._native_kernel() else "not built (no C compiler): torch path on CPU")'
}

check_dry() {
    "$PY" "$ROOT/scripts/gpu/wheels.py" explain || return 1
    if [ -d "$GPU_DIR/wheels" ]; then
        "$PY" "$ROOT/scripts/gpu/wheels.py" check "$GPU_DIR/wheels" --pins "$GPU_DIR/pins.txt" || return 1
    else
        echo "no $GPU_DIR/wheels here (scripts/gpu_wheels.sh makes it): folder not checked"
    fi
}

start=$SECONDS
if [ "$DRY_RUN" = 1 ]; then
    export TRITON_INTERPRET=1
    title="install (dry run: this environment, nothing installed)"
    # What can be checked without installing: the wheel list resolves in this environment,
    # and a carried folder, if there is one, matches it.
    if check_dry > "$OUTDIR/logs/install.log" 2>&1; then
        record_install ok "$title" $((SECONDS - start))
    else
        record_install FAILED "$title" $((SECONDS - start))
    fi
else
    SITE=$(mktemp -d "${TMPDIR:-/tmp}/rq-gpu-site.XXXXXX")
    title="install the carried wheels and the workspace (offline)"
    if install_offline "$SITE" > "$OUTDIR/logs/install.log" 2>&1; then
        record_install ok "$title" $((SECONDS - start))
    else
        record_install FAILED "$title" $((SECONDS - start))
    fi
    export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
    export PATH=$SITE/bin:$PATH
    export RQ_ASSETS=$GPU_DIR/assets # the DABS demo's data files (scripts/gpu_wheels.sh)
fi
export PIP_NO_INDEX=1 # nothing is fetched from here on
echo "[acceptance] install: $(grep -o '"status": "[^"]*"' "$OUTDIR/results/install.json") ($((SECONDS - start)) s)"

# -------------------------------------------------------------------------------- steps
args=("$OUTDIR")
[ "$DRY_RUN" = 1 ] && args+=(--dry-run)
set +e
"$PY" "$ROOT/scripts/gpu/acceptance.py" "${args[@]}"
status=$?
set -e
echo "[acceptance] done in $SECONDS s, exit status $status; report: $OUTDIR/summary.md"
exit "$status"
