#!/usr/bin/env bash
# Binding tests against a DEBUG build of the extension (`make test-debug-build`).
#
# A release build survives some undefined behaviour by luck: a misaligned numpy buffer read
# as a Rust slice works on x86. A dev-profile build keeps debug assertions and Rust's checks
# of unsafe preconditions (slice::from_raw_parts alignment, set_len, ...), so the same bug
# aborts the interpreter there. This builds the extension in the dev profile as a wheel,
# installs it into a private venv (the worktree's own release build is left alone) and
# runs the tests that exercise the array entry points and the error paths.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${DEBUG_VENV:-target/debug-bindings/venv}
WHEELS=target/debug-bindings/wheels
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

[ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
# The test dependencies come from the system site-packages (`make test` installed them);
# only the build front end may be missing: maturin on PATH, else one in the venv.
if [ -x "$VENV/bin/maturin" ]; then
  MATURIN="$VENV/bin/maturin"
elif command -v maturin >/dev/null 2>&1; then
  MATURIN=maturin
else
  "$VENV/bin/python" -m pip install -q --ignore-installed "maturin>=1.7,<2"
  MATURIN="$VENV/bin/maturin"
fi
rm -rf "$WHEELS"
"$MATURIN" build --profile dev --interpreter "$VENV/bin/python" --out "$WHEELS" 2>&1 | tail -n 3
"$VENV/bin/python" -m pip install -q --no-deps --force-reinstall "$WHEELS"/isthmus-*.whl

# The debug module, not a release build found elsewhere on sys.path, must be the one tested.
"$VENV/bin/python" - "$VENV" <<'PY'
import os, sys
import isthmus._core as core
venv = os.path.realpath(sys.argv[1])
where = os.path.realpath(core.__file__)
assert where.startswith(venv), f"isthmus._core imported from {where}, not from {venv}"
print(f"debug build under test: {where}")
PY

# Arguments replace the default selection (e.g. one test file while debugging).
if [ $# -eq 0 ]; then
  set -- tests/test_array_inputs.py tests/test_core_errors.py tests/test_ring_unit.py \
    tests/test_decode_errors.py tests/test_diag_rules.py
fi
# --capture=sys: a Rust abort message written to fd 2 reaches the log.
"$VENV/bin/python" -m pytest -q -p no:cacheprovider --capture=sys "$@"
