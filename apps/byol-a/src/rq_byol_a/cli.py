"""``rq-byol-a <command> --config FILE.yaml [key.sub=value ...]``.

Commands: prepare, pretrain, embed, evaluate, demo, sweep. Without ``--config`` a command uses the
app's ``configs/demo.yaml`` (the offline CPU demo) when it is there, else the schema's defaults
(the paper's setting).
"""

from __future__ import annotations

import logging
from pathlib import Path

from rq_core.config import app_config_dir, cli_main

from rq_byol_a import commands
from rq_byol_a.config import ByolAAppConfig

# Package data when installed from a wheel (see pyproject.toml), else the checkout's configs/.
CONFIG_DIR = app_config_dir("rq_byol_a", Path(__file__).resolve().parents[2] / "configs")

COMMANDS = {
    "prepare": commands.prepare,
    "pretrain": commands.pretrain,
    "embed": commands.embed,
    "evaluate": commands.evaluate,
    "demo": commands.demo,
    "sweep": commands.sweep,
}


def run(argv: list[str] | None = None):
    """Parse and run one command; returns what the command returned."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    demo_yaml = CONFIG_DIR / "demo.yaml"
    default = str(demo_yaml) if demo_yaml.is_file() else None
    return cli_main(
        COMMANDS,
        {name: ByolAAppConfig for name in COMMANDS},
        {name: default for name in COMMANDS},
        argv=argv,
        prog="rq-byol-a",
        description=__doc__,
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point (exit status 0; errors raise or exit 2)."""
    run(argv)
    return 0


if __name__ == "__main__":
    main()
