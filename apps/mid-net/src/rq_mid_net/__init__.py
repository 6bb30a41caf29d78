"""``rq-mid-net``: configs and command-line wiring for :mod:`rq_points` (MID-Net + RQ)."""
