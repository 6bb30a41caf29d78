"""``rq-mid-net <command> --config FILE.yaml [key.sub=value ...]``.

Commands: ``prepare`` (HDF5 caches), ``pretrain`` (MID-Net, RQ per ``augmentation.rq_bins``),
``classify`` (linear probe / finetune on the global feature at data ratios), ``segment``
(2-FC head on frozen point features), ``demo`` (all of it on the embedded procedural shapes:
random init vs MID-FC vs MID-FC + RQ), ``sweep`` (pretrain + probe per quantizer setting of
``sweep.bins/spacing/collapse``, demo budget by default). ``method=rq|midfc`` picks the
pretraining's chain; ``force=true`` redoes finished stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rq_core.config import app_config_dir, cli_main

from rq_mid_net.commands import COMMANDS
from rq_mid_net.config import MidNetAppConfig

# Package data when installed from a wheel (see pyproject.toml), else the checkout's configs/.
CONFIG_DIR = app_config_dir("rq_mid_net", Path(__file__).resolve().parents[2] / "configs")


def main(argv: list[str] | None = None) -> Any:
    schemas = {name: MidNetAppConfig for name in COMMANDS}
    defaults = {name: CONFIG_DIR / "shapenet_paper.yaml" for name in COMMANDS}
    defaults["demo"] = defaults["sweep"] = CONFIG_DIR / "demo.yaml"  # the demo's budget
    cli_main(COMMANDS, schemas, defaults, argv=argv, prog="rq-mid-net", description=__doc__)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
