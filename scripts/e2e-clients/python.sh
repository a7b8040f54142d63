#!/bin/sh
# The Python clients of the end-to-end client matrix (tests/e2e/clients/python_clients.py):
# Debian's python3-venv (the venv for the newest azure-identity from PyPI), python3-azure (the
# packaged 2023 azure-identity) and azure-cli (`az login --identity`).
# Called by scripts/install-deps.sh after its `apt-get update`.
set -eu
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
    python3-venv python3-azure azure-cli
