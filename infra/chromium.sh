#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests (playwright-core drives /usr/bin/chromium;
# Playwright's own browser download cannot work on a machine without general internet).
# Idempotent: a quick no-op when the browser is already there. Needs root (or sudo) for apt.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x $CHROMIUM ]] && "$CHROMIUM" --version >/dev/null 2>&1; then
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "chromium.sh: $CHROMIUM is missing and installing it needs root (apt-get install chromium)" >&2
  exit 1
fi

# One install at a time: test workers or parallel runs may all arrive here at once, and
# apt's own lock makes the losers fail instead of wait.
exec 9>/tmp/readstate-chromium-install.lock
flock 9
if [[ -x $CHROMIUM ]] && "$CHROMIUM" --version >/dev/null 2>&1; then
  exit 0
fi

echo "installing Debian chromium (once) ..." >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q >&2
"${as_root[@]}" apt-get install -y -q --no-install-recommends chromium fonts-liberation >&2
"$CHROMIUM" --version >&2
