#!/usr/bin/env bash
# A stand-in for docker/Dockerfile's base image where no image registry is reachable (the
# nvidia/cuda base cannot be pulled): a minimal Debian bookworm root filesystem made from
# Debian packages with debootstrap, holding Python 3.11 and venv, imported as a local image.
# The torch wheel brings its own CUDA libraries, so an image built on this base holds the same
# application as one built on the CUDA base; the CUDA base adds libcudart and the NVIDIA
# container environment, which only matter on a GPU host.
#
#   docker/build_local_base.sh [TAG]          # default TAG: local/base (run as root)
#   docker build -f docker/Dockerfile --build-arg BASE_IMAGE=local/base --network=host ...
#
# Like the ubuntu images the CUDA base is made from, it has an `ubuntu` user with uid 1000,
# so the Dockerfile's handling of that uid runs here as it does there. The host's CA bundle
# (PIP_CERT, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt) is
# copied in and named by the same variables, so pip inside the builds trusts what the host
# trusts (e.g. a proxy's own CA). Environment: RQ_DEBIAN_MIRROR (default deb.debian.org),
# DOCKER (the docker CLI, default: docker).
set -euo pipefail

tag=${1:-local/base}
suite=bookworm
mirror=${RQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}
docker=${DOCKER:-docker}

if [ "$(id -u)" -ne 0 ]; then
    echo "error: debootstrap needs root: run docker/build_local_base.sh as root" >&2
    exit 1
fi
if ! command -v debootstrap > /dev/null; then
    echo "error: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 1
fi

ca_bundle=""
for candidate in "${PIP_CERT:-}" "${REQUESTS_CA_BUNDLE:-}" "${SSL_CERT_FILE:-}" \
    /etc/ssl/certs/ca-certificates.crt; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then
        ca_bundle=$candidate
        break
    fi
done

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/rq-base.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

echo "[base] debootstrap $suite from $mirror into $rootfs"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$rootfs" "$mirror"

chroot "$rootfs" useradd --create-home --uid 1000 --shell /bin/bash ubuntu
changes=()
if [ -n "$ca_bundle" ]; then
    # The host's bundle replaces Debian's (it is the host's whole trust store); pip brings its
    # own certifi bundle, hence the variables.
    echo "[base] CA bundle: $ca_bundle"
    install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
    bundle=/etc/ssl/certs/ca-certificates.crt
    changes+=(--change "ENV PIP_CERT=$bundle REQUESTS_CA_BUNDLE=$bundle SSL_CERT_FILE=$bundle")
fi
# What debootstrap leaves behind that an image does not need: the downloaded .debs, apt lists.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/dev/* "$rootfs"/proc/* "$rootfs"/sys/*

echo "[base] importing as $tag"
tar --numeric-owner -C "$rootfs" -c . | "$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' "${changes[@]}" - "$tag"
"$docker" run --rm --network none "$tag" python3 -c 'import sys, venv; print("[base]", sys.version)'
