#!/usr/bin/env bash
# What the test suite needs beyond .venv: Debian's headless Chromium for the explorer's browser test
# (tests/test_explorer.py). Run by `make test` (so also by .ci/run). Installs it as root, or with sudo when
# that needs no password; otherwise says in one line why not, and the browser test reports itself skipped
# (CI sets STYLEGAN2_REQUIRE_BROWSER=1, so there it fails instead).
set -uo pipefail
for b in chromium chromium-browser google-chrome; do command -v "$b" >/dev/null 2>&1 && exit 0; done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "test deps: no chromium and no apt-get to install it: the browser test will be skipped" >&2; exit 0
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
else
    echo "test deps: no chromium, and installing it needs root (sudo apt-get install -y chromium):" \
         "the browser test will be skipped" >&2; exit 0
fi
echo "test deps: installing Debian's chromium (once) for the explorer's browser test"
install() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }
install || { $SUDO apt-get update -q >/dev/null 2>&1 && install; } \
    || echo "test deps: apt-get could not install chromium: the browser test will be skipped" >&2
exit 0
