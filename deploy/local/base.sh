#!/usr/bin/env bash
# Make a local Debian bookworm image with Python 3.11, to build the images from where the
# default base (the official Python image) cannot be pulled: debootstrap a minimal root file
# system from the Debian mirror and `docker import` it. An existing image is reused.
#   deploy/local/base.sh [IMAGE]      (default taskstream-local/python:3.11-bookworm)
set -euo pipefail
image="${1:-taskstream-local/python:3.11-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "Local base image $image exists; reusing it."
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is needed (apt-get install debootstrap)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "Making local base image $image: debootstrap bookworm from $mirror (about a minute)..."
debootstrap --variant=minbase --include=python3,python3-venv,tzdata,ca-certificates \
  bookworm "$work/root" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$work"/root/var/lib/apt/lists/* "$work"/root/var/cache/apt/archives/*.deb \
  "$work"/root/usr/share/doc/* "$work"/root/usr/share/man/* "$work"/root/usr/share/info/*
tar -C "$work/root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
  --message "debootstrap bookworm minbase with python3, python3-venv, tzdata" - "$image" >/dev/null
echo "Local base image $image is ready."
