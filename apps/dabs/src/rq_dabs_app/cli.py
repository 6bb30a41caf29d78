"""``rq-dabs <command> [--config FILE.yaml] [key.sub=value ...]``.

Commands: pretrain, transfer, demo, sweep, fetch-assets. ``--domain D`` and ``--algorithm A``
are shorthands for the overrides ``domain=D`` and ``algorithm=A``. Without ``--config``, pretrain
and transfer use the paper's setting (``configs/paper.yaml``); demo and sweep use
``configs/demo.yaml`` (the sweep: RQ over ``sweep.bins`` x ``sweep.spacing`` x ``sweep.collapse``
at the demo's budget on ``demo.domains``).
``fetch-assets`` puts the demo's pinned data files in ``$RQ_ASSETS`` once (the demo itself never
uses the network).
"""

from __future__ import annotations

import logging
from pathlib import Path

from rq_core.config import app_config_dir, cli_main

from rq_dabs_app import commands
from rq_dabs_app.config import DabsAppConfig, FetchAssetsConfig

# Package data when installed from a wheel (see pyproject.toml), else the checkout's configs/.
CONFIG_DIR = app_config_dir("rq_dabs_app", Path(__file__).resolve().parents[2] / "configs")

COMMANDS = {
    "pretrain": commands.pretrain,
    "transfer": commands.transfer,
    "demo": commands.demo,
    "sweep": commands.sweep,
    "fetch-assets": commands.fetch_assets,
}
SCHEMAS = {
    "pretrain": DabsAppConfig,
    "transfer": DabsAppConfig,
    "demo": DabsAppConfig,
    "sweep": DabsAppConfig,
    "fetch-assets": FetchAssetsConfig,
}
SHORTHANDS = ("--domain", "--algorithm")


def expand_shorthands(argv: list[str]) -> list[str]:
    """``--domain D`` / ``--domain=D`` -> ``domain=D`` (likewise ``--algorithm``).

    >>> expand_shorthands(["pretrain", "--domain", "x", "--algorithm=rq", "a.b=1"])
    ['pretrain', 'domain=x', 'algorithm=rq', 'a.b=1']
    """
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        flag, _, value = arg.partition("=")
        if flag in SHORTHANDS:
            if not value:
                if i + 1 >= len(argv):
                    raise SystemExit(f"rq-dabs: {flag} needs a value")
                value = argv[i + 1]
                i += 1
            out.append(f"{flag[2:]}={value}")
        else:
            out.append(arg)
        i += 1
    return out


def _default(name: str) -> str | None:
    path = CONFIG_DIR / name
    return str(path) if path.is_file() else None


def run(argv: list[str] | None = None):
    """Parse and run one command; returns what the command returned."""
    import sys

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = expand_shorthands(sys.argv[1:] if argv is None else list(argv))
    return cli_main(
        COMMANDS,
        SCHEMAS,
        {
            "pretrain": _default("paper.yaml"),
            "transfer": _default("paper.yaml"),
            "demo": _default("demo.yaml"),
            "sweep": _default("demo.yaml"),
            "fetch-assets": None,
        },
        argv=argv,
        prog="rq-dabs",
        description=__doc__,
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point (exit status 0; errors raise or exit 2)."""
    run(argv)
    return 0


if __name__ == "__main__":
    main()
