"""Build hook for the one compiled piece of rq-core: the CPU kernel ``rq_core._native``.

Everything else is in pyproject.toml. The extension is plain C against the Python API (no
torch or numpy headers, so it builds in pip's isolated environment) and optional: without a
C compiler the install still succeeds and rq_core uses its torch path, with the same results.
"""

import sys

from setuptools import Extension, setup

args = ["/O2"] if sys.platform == "win32" else ["-O3", "-std=c11"]

setup(
    ext_modules=[
        Extension(
            "rq_core._native",
            sources=["src/rq_core/_native.c"],
            extra_compile_args=args,
            optional=True,
        )
    ]
)
