#!/usr/bin/env bash
# The test suite against the LOWEST versions pyproject.toml allows for the direct
# dependencies (uv's lowest-direct resolution), so a lower bound that no longer works is
# caught here before a user meets it. The newest versions are what `make test` installs.
# The extension is the one already built in python/isthmus (by `pip install -e .`); the
# venv sees the source tree through a .pth file instead of building it a second time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${LOWEST_VENV:-/tmp/isthmus-lowest}
ls python/isthmus/_core*.so >/dev/null 2>&1 || { echo "build the extension first (pip install -e .)" >&2; exit 1; }
$PY -m pip install -q uv
rm -rf "$VENV"
$PY -m uv venv -q -p "$PY" "$VENV"
$PY -m uv pip compile pyproject.toml --extra test --resolution lowest-direct \
  --python-version "$($PY -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  -q -o "$VENV/lowest.txt"
echo "lowest direct versions:"
grep -iE '^(numpy|msgspec|pymodbus|asyncua|aiomqtt|prometheus-client|pytest|pytest-asyncio|pytest-timeout|hypothesis|scipy|matplotlib|cryptography)==' "$VENV/lowest.txt" | tr '\n' ' '
echo
$PY -m uv pip install -q -p "$VENV/bin/python" -r "$VENV/lowest.txt"
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PWD/python" > "$site/isthmus-source.pth"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
