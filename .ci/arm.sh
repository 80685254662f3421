#!/usr/bin/env bash
# ARM gateways: cross-build the aarch64 wheel of isthmus with Debian's Rust toolchain and run
# the core tests with it under qemu user-mode emulation, on an aarch64 CPython 3.11 assembled
# from Debian's arm64 packages (unpacked, never installed). Fails when the tests fail.
#
#   .ci/arm.sh          build, test under emulation, compare a reference computation with x86
#   .ci/arm.sh wheel    only build the aarch64 wheel (into target/wheels-arm/)
#
# Runs as root (or with sudo) and is idempotent: packages are installed once, downloads are
# cached under target/arm-cache/, and the cross build has its own CARGO_TARGET_DIR so the host
# build is never invalidated. Rustup's cargo stays first on PATH: Debian's cargo and rustc are
# used only inside the cross-build subshell.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-all}
PY=${PYTHON:-python3}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
CACHE=target/arm-cache
WHEELS=target/wheels-arm
TARGET=aarch64-unknown-linux-gnu
# Core areas only: decoding, rings, spectral, diagnostics, package. Network/protocol tests
# need peers that are not part of what the ARM build changes.
CORE_TESTS=(tests/test_decode_*.py tests/test_ring_*.py tests/test_spectrum_*.py
            tests/test_diag_*.py tests/test_package.py)

t0=$SECONDS
phase() { printf -- '--- arm: %s (%ss)\n' "$1" "$((SECONDS - t0))"; }
die() { printf 'arm: %s\n' "$*" >&2; exit 1; }

apt_get() {
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 \
    -o Dpkg::Use-Pty=0 "$@"
}

# --- 1. Debian packages: Rust 1.96 with the arm64 std, cross linker, qemu -----------------
HOST_PKGS=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu qemu-user-static)
APT_UPDATED=0
apt_update_once() {
  # A mirror caught mid-sync fails one index but leaves the others usable: carry on, and let
  # the install itself say whether something is really missing.
  if [ "$APT_UPDATED" = 0 ]; then
    apt_get update || echo "arm: apt-get update reported errors; trying with the lists it has"
    APT_UPDATED=1
  fi
}
install_packages() {
  local missing=() p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
  done
  [ ${#missing[@]} = 0 ] && return 0
  echo "arm: installing ${missing[*]}"
  apt_update_once
  # No recommends: rust-web-llvm would pull the whole LLVM tool suite, not needed to link.
  apt_get install -y --no-install-recommends "${missing[@]}" >/dev/null
}

candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }

phase "Debian packages"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  apt_update_once
fi
if ! install_packages "${HOST_PKGS[@]}"; then
  # The host compiler and the target's std must be the very same Debian version. When the
  # arm64 security index lagged behind (a mirror mid-sync), rustc-web's candidate is newer than
  # the arm64 std's: pin all three to the version the arm64 side has (1.85 or later both work,
  # the workspace's rust-version is 1.85).
  v=$(candidate libstd-rust-web-dev:arm64)
  [ -n "$v" ] && [ "$v" != "(none)" ] || die "Debian offers no libstd-rust-web-dev:arm64"
  echo "arm: retrying with the Rust toolchain pinned to $v"
  apt_get install -y --no-install-recommends "rustc-web=$v" "cargo-web=$v" \
    "libstd-rust-web-dev:arm64=$v" gcc-aarch64-linux-gnu qemu-user-static >/dev/null
fi
/usr/bin/rustc --version

# --- 2. Cross build with Debian's cargo/rustc ----------------------------------------------
phase "cross build ($TARGET, release profile)"
# maturin: the one on PATH (this machine kind ships it), else install it for the host Python.
if maturin --version >/dev/null 2>&1; then
  MATURIN=(maturin)
else
  $PY -m maturin --version >/dev/null 2>&1 || $PY -m pip install -q "maturin>=1.7,<2"
  MATURIN=("$PY" -m maturin)
fi
# NEON in the FFT: rustfft's default features include "neon" (rustfft >= 6.2); fail loudly if
# a dependency change ever turns it off for the target we ship.
/usr/bin/cargo tree -q -e features --target "$TARGET" -i rustfft --locked 2>/dev/null \
  | grep -q 'rustfft feature "neon"' || die "rustfft is built without its neon feature"
rm -rf "${WHEELS:?}/$TARGET"
(
  # Only here does Debian's toolchain come first; the host's RUSTFLAGS are not for the target.
  unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET
  export PATH="/usr/bin:$PATH" CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc \
    CARGO_TARGET_DIR=target/aarch64 \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  log=target/aarch64/maturin.log
  mkdir -p target/aarch64
  if ! "${MATURIN[@]}" build --release --locked --target "$TARGET" --out "$WHEELS/$TARGET" \
      >"$log" 2>&1; then
    cat "$log"
    exit 1
  fi
  grep -vE '^ +(Compiling|Downloaded|Downloading|Fresh) ' "$log" || true
)
WHEEL=$(ls "$WHEELS/$TARGET"/isthmus-*-abi3-*aarch64.whl 2>/dev/null | head -n1)
[ -n "$WHEEL" ] || die "no aarch64 wheel was built"
echo "arm: built $WHEEL"
[ "$MODE" = wheel ] && { phase "done"; exit 0; }

# Byte-compile natively into the emulated interpreter's pycache prefix: CPython 3.11.x keeps
# one bytecode format (magic number) across patch releases, so the emulated 3.11 loads these
# instead of compiling the standard library, numpy and pytest under qemu on a fresh machine.
# Best effort: a file the host cannot compile is simply compiled later by the guest.
PYCACHE=$(realpath -m "$CACHE/pycache")
precompile() {
  PYTHONPYCACHEPREFIX=$PYCACHE $PY -m compileall -q -j 2 "$(realpath "$1")" >/dev/null 2>&1 \
    || true
}

# --- 3. An aarch64 CPython 3.11 from Debian's arm64 packages, unpacked, not installed ------
phase "aarch64 CPython from Debian packages"
SYSROOT=$CACHE/sysroot-arm64
DEBS=$CACHE/debs-arm64
GUEST_DEBS=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
            libc6 libgcc-s1 libstdc++6 libexpat1 zlib1g libssl3 libbz2-1.0 libcrypt1
            libffi8 liblzma5 libsqlite3-0 libuuid1)
mkdir -p "$DEBS"
want=()
for p in "${GUEST_DEBS[@]}"; do
  compgen -G "$DEBS/${p}_*_arm64.deb" >/dev/null || want+=("$p:arm64")
done
if [ ${#want[@]} != 0 ]; then
  # apt-get download writes into the current directory; _apt cannot write there, hence -o.
  (cd "$DEBS" && apt-get download -qq -o APT::Sandbox::User=root "${want[@]}") \
    || { apt_update_once; (cd "$DEBS" && apt-get download -qq -o APT::Sandbox::User=root "${want[@]}"); }
fi
stamp=$(cd "$DEBS" && ls ./*.deb | sort | sha256sum | cut -c1-16)
if [ "$(cat "$SYSROOT/.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$SYSROOT"
  mkdir -p "$SYSROOT"
  for deb in "$DEBS"/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
  precompile "$SYSROOT/usr/lib/python3.11"
  echo "$stamp" >"$SYSROOT/.stamp"
fi
# A host-side launcher: qemu with the sysroot, argv[0] set to the launcher itself so that
# sys.executable re-enters emulation when a test starts a subprocess (no binfmt_misc needed).
GUEST_PY=$SYSROOT/usr/bin/python3-aarch64
cat >"$GUEST_PY" <<'EOF'
#!/bin/sh
root=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd)
unset PYTHONHOME PYTHONSTARTUP
exec qemu-aarch64-static -L "$root" -0 "$0" "$root/usr/bin/python3.11" "$@"
EOF
chmod +x "$GUEST_PY"
GUEST_PY=$(realpath "$GUEST_PY")

# --- 4. aarch64 wheels of numpy, scipy and the test tools, unpacked onto sys.path ----------
phase "aarch64 wheels for the tests"
SITE=$CACHE/site-aarch64
PIPCACHE=$CACHE/pip-aarch64
req_stamp=$(sha256sum .ci/arm-requirements.txt | cut -c1-16)
if [ "$(cat "$SITE/.stamp" 2>/dev/null)" != "$req_stamp" ]; then
  mkdir -p "$PIPCACHE"
  $PY -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 \
    --platform manylinux_2_17_aarch64 --python-version 3.11 --implementation cp --abi cp311 \
    -d "$PIPCACHE" -r .ci/arm-requirements.txt
  rm -rf "$SITE"
  mkdir -p "$SITE"
  while read -r name; do
    # Only the pinned versions: older downloads may linger in the cache.
    whl=$(ls "$PIPCACHE"/"$name"-*.whl 2>/dev/null | head -n1)
    [ -n "$whl" ] || die "no wheel for $name in $PIPCACHE"
    $PY -m zipfile -e "$whl" "$SITE"
  done < <(sed -e 's/#.*//' -e '/^ *$/d' .ci/arm-requirements.txt \
             | awk -F'==' '{n=$1; gsub(/-/, "_", n); print n"-"$2}')
  precompile "$SITE"
  echo "$req_stamp" >"$SITE/.stamp"
fi
PKG=$CACHE/isthmus-aarch64
rm -rf "$PKG"
$PY -m zipfile -e "$WHEEL" "$PKG"

# Environment of every emulated run: our wheel first, then the test dependencies. Bytecode
# is written (compiling pytest or numpy under emulation on every run costs a minute), but
# into the cache rather than into the source tree.
guest() {
  PYTHONPATH="$(realpath "$PKG"):$(realpath "$SITE"):$(realpath .ci)" \
    PYTHONPYCACHEPREFIX="$PYCACHE" PYTHONDONTWRITEBYTECODE= "$GUEST_PY" "$@"
}

phase "emulated interpreter check"
guest - <<'EOF'
import platform, sys
import numpy, isthmus, isthmus._core as core
with open(core.__file__, "rb") as f:
    head = f.read(20)
# ELF e_machine 183 = EM_AARCH64: the extension really is the cross-built one.
assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183, core.__file__
assert platform.machine() == "aarch64", platform.machine()
print(f"arm: CPython {platform.python_version()} on {platform.machine()} (qemu), "
      f"numpy {numpy.__version__}, isthmus {isthmus.__version__} from {core.__file__}")
EOF

# --- 5. The core tests under emulation ------------------------------------------------------
phase "core tests under qemu"
tests=()
for f in "${CORE_TESTS[@]}"; do [ -f "$f" ] && tests+=("$f"); done
[ ${#tests[@]} != 0 ] || die "no core test file found (looked for ${CORE_TESTS[*]})"
echo "arm: running ${tests[*]}"
rc=0
guest -m pytest -p no:cacheprovider -p arm_pytest_plugin -m "not network" -q "${tests[@]}" || rc=$?
# Exit code 5 (nothing collected) is a failure here too: the step must prove something.
[ "$rc" = 0 ] || die "core tests under qemu failed (pytest exit code $rc)"

# --- 6. One reference computation on both architectures -------------------------------------
phase "reference computation: x86_64 vs aarch64"
host_arch=$($PY -c 'import platform; print(platform.machine())')
$PY .ci/arm_reference.py --out "$CACHE/reference-$host_arch.json"
guest .ci/arm_reference.py --out "$CACHE/reference-aarch64.json"
$PY .ci/arm_reference.py --compare "$CACHE/reference-$host_arch.json" \
  "$CACHE/reference-aarch64.json"

phase "done"
