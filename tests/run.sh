#!/usr/bin/env bash
# Install everything the test suite needs, then run it.
#
#   bash tests/run.sh [pytest args...]
#
# On a fresh Debian machine (as root, or with sudo) this installs the real parts the
# integration tests use: Prometheus and Alertmanager (promtool, amtool), Chromium,
# socat (TLS terminator). It creates .venv with the project and its test extras.
# Under CI=true a real part that cannot be found makes its tests fail, never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "==> installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian packages start services of their own; the tests start their own processes.
  for service in prometheus prometheus-alertmanager prometheus-node-exporter; do
    $SUDO service "$service" stop >/dev/null 2>&1 || true
  done
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install -q uv
fi
echo "==> installing driftd with test extras"
.venv/bin/uv pip install --python .venv/bin/python -q -e ".[test]"

export NML_DISABLE_USAGE_LOGGING=1
export PYTHONDONTWRITEBYTECODE=1
echo "==> running the test suite"
if [ $# -eq 0 ]; then
  # Defaults for the whole suite: quiet, the slowest tests listed, no cache left behind.
  set -- -q -p no:cacheprovider --durations=25
fi
exec .venv/bin/python -m pytest "$@"
