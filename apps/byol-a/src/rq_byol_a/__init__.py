"""rq-byol-a: configs and the ``rq-byol-a`` command for BYOL-A with randomized quantization."""

__version__ = "0.1.0"
