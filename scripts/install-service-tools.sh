#!/usr/bin/env bash
# Install what the service's heavier tests need, from Debian's packages and PyPI only:
#   - chromium: the browser of the end-to-end page test (tests/test_e2e_page.py), driven by
#     Playwright with executable_path=/usr/bin/chromium (Playwright's own browser download is
#     never used, and would fail here);
#   - postgresql: the server binaries (initdb, pg_ctl) the storage tests start a throwaway
#     cluster with (tests/test_server_storage.py); no system cluster is needed or started;
#   - the Python test tools of the dev extra (playwright, schemathesis, psycopg), in case the venv
#     predates them.
#
#   scripts/install-service-tools.sh [VENV]      # VENV defaults to .venv
#
# Idempotent and non-interactive; run as root (or with sudo). Best effort by design: the tests that
# need a missing tool skip with a message saying what to install.
set -euo pipefail

VENV="${1:-.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "install-service-tools: no Python at $PY (create the venv first, e.g. 'make test')" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

APT_PACKAGES=(chromium postgresql fonts-dejavu-core)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-service-tools: apt-get install ${missing[*]}" >&2
    $SUDO apt-get update -qq
    # The postgresql package may create (and, with an init system, start) its own "main" cluster on
    # port 5432; the tests do not use it: they start their own on a free loopback port.
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "install-service-tools: Debian packages already installed" >&2
fi

"$PY" -m pip install --quiet "playwright>=1.40" "schemathesis>=4.0" "psycopg[binary]>=3.1"

# Report what the tests will find.
chromium --version 2>/dev/null | sed 's/^/install-service-tools: /' || echo "install-service-tools: no chromium" >&2
initdb_bin=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$initdb_bin" ]; then
    echo "install-service-tools: PostgreSQL server: $("$initdb_bin" --version)"
else
    echo "install-service-tools: no PostgreSQL server binaries" >&2
fi
"$PY" -c "import playwright, schemathesis, psycopg; print('install-service-tools: playwright, schemathesis', schemathesis.__version__, 'and psycopg', psycopg.__version__, 'importable')"
