#!/bin/sh
# Drop from a freshly installed virtual environment what no run of the image reads; called by
# docker/Dockerfile in the same RUN as the install, so the bytes never reach a layer.
#   sh docker/prune_venv.sh /opt/venv
# What goes (docs/scaling.md "Image size" has the numbers), and why it is safe:
#   *.a              static archives: only a linker reads them (cupti's, nvperf's, cudart's)
#   tests/           the third-party packages' own test suites (numpy, sympy, ...); nothing
#                    imports them at run time (torch.testing is not a tests/ folder)
#   libnvrtc.alt*    NVRTC's alternative build; torch loads libnvrtc.so.13, and no file of the
#                    environment names the .alt one
#   libcusolverMg*   cuSOLVER's multi-GPU API: no library of the environment links it
# What stays although big: every shared library the CUDA wheels and torch link
# (tests/docker/test_images.py checks with ldd that none is missing), the bytecode caches
# (__pycache__: without them every start recompiles torch), the headers (torch.compile on the
# CPU and torch.utils.cpp_extension compile against them), pip (pip check, derived images).
set -eu
venv=${1:?usage: prune_venv.sh VENV}
site=$(echo "$venv"/lib/python3*/site-packages)
test -d "$site"
before=$(du -sm "$venv" | cut -f1)
find "$venv" -type f -name '*.a' -delete
find "$site" -depth -type d -name tests -exec rm -rf {} +
rm -f "$site"/nvidia/cu*/lib/libnvrtc.alt.so* "$site"/nvidia/cu*/lib/libnvrtc-builtins.alt.so* \
    "$site"/nvidia/cu*/lib/libcusolverMg.so*
echo "[prune_venv] $venv: ${before} MB -> $(du -sm "$venv" | cut -f1) MB"
