"""The main job: build the embedded data, pretrain and evaluate every modality, write a report.

    ./dev demo            # the full demo (about 20 min on an idle 2-core machine)
    ./dev demo --quick    # a ~1 minute smoke version
    ./dev demo --force    # redo every stage instead of reusing finished ones

Stages: the Figure-2-style augmentation picture, the quantizer benchmark, then each app's
`demo` command (audio BYOL-A, points MID-Net, DABS), each of which builds its offline data
(cached under $RQ_CACHE, default ~/.cache/rq), pretrains with RQ and with the modality's
baseline, and linear-probes them and a random-init encoder. A finished stage is reused on a
re-run while its command and demo config are unchanged (recorded in logs/<stage>.stage.json).
Everything lands in runs/demo/ (runs/demo-quick/ with --quick): report.md, report.html,
stages.json and each stage's files. The parts live in scripts/rq_demo/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rq_core.runs import atomic_write
from rq_demo.apps import ROOT
from rq_demo.report import write_report
from rq_demo.stages import build_stages, run_stages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a ~1 minute smoke version")
    ap.add_argument("--force", action="store_true", help="redo finished stages")
    ap.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="default runs/demo (runs/demo-quick with --quick)",
    )
    ap.add_argument(
        "--only", nargs="*", help="stage names to run (figure, benchmark, byol-a, mid-net, dabs)"
    )
    args = ap.parse_args(argv)
    run_dir = (args.run_dir or ROOT / "runs" / ("demo-quick" if args.quick else "demo")).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    stages = build_stages(run_dir, args.quick)
    if args.only:
        unknown = set(args.only) - {s.name for s in stages}
        if unknown:
            ap.error(f"unknown stage(s) {sorted(unknown)}; choose from {[s.name for s in stages]}")
        stages = [s for s in stages if s.name in args.only]
    t0 = time.monotonic()
    run_stages(stages, run_dir, args.quick, args.force)
    total = time.monotonic() - t0
    summary = [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 1)} for s in stages]
    atomic_write(run_dir / "stages.json", json.dumps(summary, indent=2) + "\n")
    md, page = write_report(stages, run_dir, args.quick, total)
    print(f"\nreport: {md}\n        {page}")
    failed = [s.name for s in stages if s.status.startswith("failed")]
    if failed:
        print(f"failed stages: {failed} (logs in {run_dir / 'logs'})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
