#!/usr/bin/env bash
# ARM gateways: cross-build the isthmus wheel with Debian's Rust toolchain and run the core
# tests with it under qemu user-mode emulation, on a CPython 3.11 assembled from Debian's
# packages for the target (unpacked, never installed). Fails when the tests fail.
#
#   .ci/arm.sh [aarch64|armv7] [--wheel-only]
#
#   aarch64 (default)  aarch64-unknown-linux-gnu: Raspberry Pi 4/5, Revolution Pi, IOT2050.
#                      numpy/scipy from PyPI's manylinux aarch64 wheels; after the tests, one
#                      reference computation is compared with the host's (.ci/arm_reference.py).
#   armv7              armv7-unknown-linux-gnueabihf (32-bit gateways): numpy from Debian's
#                      python3-numpy:armhf (PyPI has no armv7 wheels); tests needing scipy are
#                      left out (named in the output).
#   --wheel-only       only build the wheel, into target/wheels-arm/<target>/
#
# Runs as root (or with sudo) and is idempotent: packages are installed once, downloads are
# cached under target/arm-cache/, and each cross build has its own CARGO_TARGET_DIR so the
# host build is never invalidated. Rustup's cargo stays first on PATH: Debian's cargo and
# rustc are used only inside the cross-build subshell.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=aarch64
WHEEL_ONLY=0
for arg in "$@"; do
  case $arg in
    aarch64 | armv7) ARCH=$arg ;;
    --wheel-only | wheel) WHEEL_ONLY=1 ;;
    *) echo "usage: $0 [aarch64|armv7] [--wheel-only]" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
CACHE=target/arm-cache
case $ARCH in
  aarch64)
    TARGET=aarch64-unknown-linux-gnu DEBARCH=arm64 GNU=aarch64-linux-gnu
    QEMU=qemu-aarch64-static ELF_MACHINE=183 ;;  # EM_AARCH64
  armv7)
    TARGET=armv7-unknown-linux-gnueabihf DEBARCH=armhf GNU=arm-linux-gnueabihf
    QEMU=qemu-arm-static ELF_MACHINE=40 ;;       # EM_ARM
esac
WHEELS=target/wheels-arm/$TARGET
# Core areas only: decoding, rings, spectral, diagnostics, package. Network/protocol tests
# need peers that are not part of what the ARM build changes.
CORE_TESTS=(tests/test_decode_*.py tests/test_ring_*.py tests/test_spectrum_*.py
            tests/test_diag_*.py tests/test_package.py)

t0=$SECONDS
phase() { printf -- '--- arm %s: %s (%ss)\n' "$ARCH" "$1" "$((SECONDS - t0))"; }
die() { printf 'arm: %s\n' "$*" >&2; exit 1; }

apt_get() {
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 \
    -o Dpkg::Use-Pty=0 "$@"
}
APT_UPDATED=0
apt_update_once() {
  # A mirror caught mid-sync fails one index but leaves the others usable: carry on, and let
  # the install itself say whether something is really missing.
  if [ "$APT_UPDATED" = 0 ]; then
    apt_get update || echo "arm: apt-get update reported errors; trying with the lists it has"
    APT_UPDATED=1
  fi
}
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
install_packages() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && return 0
  echo "arm: installing ${missing[*]}"
  apt_update_once
  # No recommends: rust-web-llvm would pull the whole LLVM tool suite, not needed to link.
  apt_get install -y --no-install-recommends "${missing[@]}" >/dev/null
}
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}'; }
# apt-get download into a cache folder (root's _apt user cannot write there, hence the -o).
download_debs() {
  local dir=$1; shift
  local want=() p
  mkdir -p "$dir"
  for p in "$@"; do
    compgen -G "$dir/${p%%[:=]*}_*_${DEBARCH}.deb" >/dev/null \
      || compgen -G "$dir/${p%%[:=]*}_*_all.deb" >/dev/null || want+=("$p")
  done
  [ ${#want[@]} = 0 ] && return 0
  (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "${want[@]}") || {
    apt_update_once
    (cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "${want[@]}")
  }
}

# --- 1. Debian packages: Rust with the target's std, cross linker and libc, qemu ----------
phase "Debian packages"
if ! dpkg --print-foreign-architectures | grep -qx "$DEBARCH"; then
  $SUDO dpkg --add-architecture "$DEBARCH"
  APT_UPDATED=0
  apt_update_once
fi
CROSS_PKGS=("gcc-$GNU" "libc6-dev-${DEBARCH}-cross" qemu-user-static)
install_packages rustc-web cargo-web "${CROSS_PKGS[@]}"
# Debian's rustc and the target's std must be the very same package version.
RUSTC=/usr/bin/rustc
host_v=$(dpkg-query -W -f='${Version}' rustc-web)
std_v=$(candidate "libstd-rust-web-dev:$DEBARCH")
[ -n "$std_v" ] && [ "$std_v" != "(none)" ] || die "Debian offers no libstd-rust-web-dev:$DEBARCH"
if installed "libstd-rust-web-dev:$DEBARCH" \
  && [ "$(dpkg-query -W -f='${Version}' "libstd-rust-web-dev:$DEBARCH")" = "$host_v" ]; then
  :
elif [ "$std_v" = "$host_v" ]; then
  install_packages "libstd-rust-web-dev:$DEBARCH"
elif [ "$ARCH" = aarch64 ]; then
  # The arm64 index lags the host's (a mirror mid-sync): move the toolchain to the version the
  # arm64 side has. The workspace's rust-version is 1.85, so any Debian version from there on.
  echo "arm: pinning Debian's Rust to $std_v, the version of the arm64 std"
  apt_get install -y --no-install-recommends --allow-downgrades "rustc-web=$std_v" \
    "cargo-web=$std_v" "libstd-rust-web-dev:arm64=$std_v" >/dev/null
else
  # For the welcome-only 32-bit target, leave the installed toolchain alone: unpack the
  # compiler of the armhf std's version into the cache and drive it with Debian's cargo.
  echo "arm: Debian's rustc is $host_v, the armhf std $std_v: using an unpacked rustc $std_v"
  tc=$CACHE/rust-$std_v
  if [ ! -x "$tc/rustc" ]; then
    series=${std_v%%+*}; series=${series%.*}  # 1.85.0+dfsg... -> 1.85
    llvm=$(apt-cache depends "libstd-rust-web-$series=$std_v" | awk '/Depends: libllvm/ {print $2}')
    [ -n "$llvm" ] || die "cannot tell which libllvm rustc $std_v needs"
    download_debs "$tc/debs" "rustc-web=$std_v" "libstd-rust-web-dev=$std_v" \
      "libstd-rust-web-$series=$std_v" "libstd-rust-web-dev:armhf=$std_v" \
      "libstd-rust-web-$series:armhf=$std_v" "$llvm"
    for deb in "$tc"/debs/*.deb; do dpkg-deb -x "$deb" "$tc/root"; done
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' \
      "$(realpath "$tc/root/usr/lib/x86_64-linux-gnu")" "$(realpath "$tc/root/usr/bin/rustc")" \
      >"$tc/rustc"
    chmod +x "$tc/rustc"
  fi
  RUSTC=$(realpath "$tc/rustc")
fi
"$RUSTC" --version

# --- 2. Cross build with Debian's cargo/rustc ----------------------------------------------
phase "cross build ($TARGET, release profile)"
# maturin: the one on PATH (this machine kind ships it), else install it for the host Python.
if maturin --version >/dev/null 2>&1; then
  MATURIN=(maturin)
else
  $PY -m maturin --version >/dev/null 2>&1 || $PY -m pip install -q "maturin>=1.7,<2"
  MATURIN=("$PY" -m maturin)
fi
if [ "$ARCH" = aarch64 ]; then
  # NEON in the FFT: rustfft's default features include "neon" (rustfft >= 6.2); fail loudly
  # if a dependency change ever turns it off for the target we ship.
  /usr/bin/cargo tree -q -e features --target "$TARGET" -i rustfft --locked 2>/dev/null \
    | grep -q 'rustfft feature "neon"' || die "rustfft is built without its neon feature"
fi
rm -rf "$WHEELS"
(
  # Only here does Debian's toolchain come first; the host's RUSTFLAGS are not for the target.
  unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET
  linker_var=CARGO_TARGET_$(echo "$TARGET" | tr 'a-z-' 'A-Z_')_LINKER
  export PATH="/usr/bin:$PATH" CARGO=/usr/bin/cargo RUSTC="$RUSTC" \
    CARGO_TARGET_DIR="target/$ARCH" "$linker_var=$GNU-gcc"
  log=target/$ARCH/maturin.log
  mkdir -p "target/$ARCH"
  if ! "${MATURIN[@]}" build --release --locked --target "$TARGET" --out "$WHEELS" \
      >"$log" 2>&1; then
    cat "$log"
    exit 1
  fi
  grep -vE '^ +(Compiling|Downloaded|Downloading|Fresh) ' "$log" || true
)
WHEEL=$(ls "$WHEELS"/isthmus-*-abi3-*.whl 2>/dev/null | head -n1)
[ -n "$WHEEL" ] || die "no $ARCH wheel was built"
echo "arm: built $WHEEL"
[ "$WHEEL_ONLY" = 1 ] && { phase "done"; exit 0; }

# Byte-compile natively into the emulated interpreter's pycache prefix: CPython 3.11.x keeps
# one bytecode format (magic number) across patch releases, so the emulated 3.11 loads these
# instead of compiling the standard library, numpy and pytest under qemu on a fresh machine.
# Best effort: a file the host cannot compile is simply compiled later by the guest.
PYCACHE=$(realpath -m "$CACHE/pycache-$ARCH")
precompile() {
  PYTHONPYCACHEPREFIX=$PYCACHE $PY -m compileall -q -j 2 "$(realpath "$1")" >/dev/null 2>&1 \
    || true
}

# --- 3. A CPython 3.11 for the target from Debian's packages, unpacked, not installed ------
phase "$DEBARCH CPython from Debian packages"
SYSROOT=$CACHE/sysroot-$DEBARCH
DEBS=$CACHE/debs-$DEBARCH
GUEST_DEBS=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
            libc6 libgcc-s1 libstdc++6 libexpat1 zlib1g libssl3 libbz2-1.0 libcrypt1
            libffi8 liblzma5 libsqlite3-0 libuuid1)
# No numpy wheels for armv7 on PyPI: Debian's numpy (1.24) and the BLAS/LAPACK it links.
if [ "$ARCH" = armv7 ]; then GUEST_DEBS+=(python3-numpy libblas3 liblapack3 libgfortran5); fi
download_debs "$DEBS" "${GUEST_DEBS[@]/%/:$DEBARCH}"
stamp=$(cd "$DEBS" && ls ./*.deb | sort | sha256sum | cut -c1-16)
if [ "$(cat "$SYSROOT/.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$SYSROOT"
  mkdir -p "$SYSROOT"
  for deb in "$DEBS"/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
  # update-alternatives would provide these links on an installed system.
  for lib in blas lapack; do
    if [ -e "$SYSROOT/usr/lib/$GNU/$lib/lib$lib.so.3" ]; then
      ln -sf "$lib/lib$lib.so.3" "$SYSROOT/usr/lib/$GNU/lib$lib.so.3"
    fi
  done
  precompile "$SYSROOT/usr/lib/python3.11"
  precompile "$SYSROOT/usr/lib/python3/dist-packages"
  echo "$stamp" >"$SYSROOT/.stamp"
fi
# A host-side launcher: qemu with the sysroot, argv[0] set to the launcher itself so that
# sys.executable re-enters emulation when a test starts a subprocess (no binfmt_misc needed).
GUEST_PY=$SYSROOT/usr/bin/python3-$ARCH
cat >"$GUEST_PY" <<EOF
#!/bin/sh
root=\$(CDPATH= cd -- "\$(dirname -- "\$0")/../.." && pwd)
unset PYTHONHOME PYTHONSTARTUP
exec $QEMU -L "\$root" -0 "\$0" "\$root/usr/bin/python3.11" "\$@"
EOF
chmod +x "$GUEST_PY"
GUEST_PY=$(realpath "$GUEST_PY")

# --- 4. Wheels of the test tools (and numpy, scipy on aarch64), unpacked onto sys.path -----
phase "wheels for the tests"
REQUIREMENTS=.ci/arm-requirements-$ARCH.txt
SITE=$CACHE/site-$ARCH
PIPCACHE=$CACHE/pip-$ARCH
if [ "$ARCH" = aarch64 ]; then
  PLATFORMS=(--platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64
             --platform manylinux_2_17_aarch64 --implementation cp --abi cp311)
else
  PLATFORMS=(--platform any --implementation py)  # pure Python only
fi
req_stamp=$(sha256sum "$REQUIREMENTS" | cut -c1-16)
if [ "$(cat "$SITE/.stamp" 2>/dev/null)" != "$req_stamp" ]; then
  mkdir -p "$PIPCACHE"
  $PY -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    "${PLATFORMS[@]}" --python-version 3.11 -d "$PIPCACHE" -r "$REQUIREMENTS"
  rm -rf "$SITE"
  mkdir -p "$SITE"
  while read -r name; do
    # Only the pinned versions: older downloads may linger in the cache.
    whl=$(ls "$PIPCACHE"/"$name"-*.whl 2>/dev/null | head -n1)
    [ -n "$whl" ] || die "no wheel for $name in $PIPCACHE"
    $PY -m zipfile -e "$whl" "$SITE"
  done < <(sed -e 's/#.*//' -e '/^ *$/d' "$REQUIREMENTS" \
             | awk -F'==' '{n=$1; gsub(/-/, "_", n); print n"-"$2}')
  precompile "$SITE"
  echo "$req_stamp" >"$SITE/.stamp"
fi
PKG=$CACHE/isthmus-$ARCH
rm -rf "$PKG"
$PY -m zipfile -e "$WHEEL" "$PKG"
if [ "$ARCH" = aarch64 ]; then
  # The NEON FFT kernels must be in the extension once it uses rustfft at all (maturin does
  # not strip symbols; with a stripped build there is nothing to count and nothing to check).
  so=$(ls "$PKG"/isthmus/_core*.so)
  fft_symbols=$("$GNU-nm" "$so" 2>/dev/null | grep -c 'rustfft' || true)
  neon_symbols=$("$GNU-nm" "$so" 2>/dev/null | grep -c 'rustfft\.\.neon' || true)
  echo "arm: rustfft functions in the extension: $fft_symbols, of them NEON: $neon_symbols"
  [ "$fft_symbols" = 0 ] || [ "$neon_symbols" -gt 0 ] || die "no NEON FFT kernel was compiled in"
fi

# Environment of every emulated run: our wheel first, then the test dependencies. Bytecode
# is written (compiling pytest or numpy under emulation on every run costs a minute), but
# into the cache rather than into the source tree.
guest() {
  PYTHONPATH="$(realpath "$PKG"):$(realpath "$SITE"):$(realpath .ci)" \
    PYTHONPYCACHEPREFIX="$PYCACHE" PYTHONDONTWRITEBYTECODE= "$GUEST_PY" "$@"
}

phase "emulated interpreter check"
ELF_MACHINE=$ELF_MACHINE guest - <<'EOF'
import os, platform
import numpy, isthmus, isthmus._core as core
with open(core.__file__, "rb") as f:
    head = f.read(20)
# ELF e_machine: the extension really is the cross-built one, and so is the interpreter.
machine = int.from_bytes(head[18:20], "little")
assert head[:4] == b"\x7fELF" and machine == int(os.environ["ELF_MACHINE"]), core.__file__
print(f"arm: CPython {platform.python_version()} on {platform.machine()} (qemu), "
      f"numpy {numpy.__version__}, isthmus {isthmus.__version__} from {core.__file__}")
EOF

# --- 5. The core tests under emulation ------------------------------------------------------
phase "core tests under qemu"
tests=()
for f in "${CORE_TESTS[@]}"; do [ -f "$f" ] && tests+=("$f"); done
[ ${#tests[@]} != 0 ] || die "no core test file found (looked for ${CORE_TESTS[*]})"
if [ ! -d "$SITE/scipy" ] && [ ! -d "$SYSROOT/usr/lib/python3/dist-packages/scipy" ]; then
  kept=()
  for f in "${tests[@]}"; do
    if grep -qE '^\s*(import scipy|from scipy)' "$f"; then
      echo "arm: left out $f: it imports scipy (its oracle), which has no $ARCH build here"
    else
      kept+=("$f")
    fi
  done
  tests=("${kept[@]}")
  [ ${#tests[@]} != 0 ] || die "every core test file needs scipy"
fi
echo "arm: running ${tests[*]}"
rc=0
guest -m pytest -p no:cacheprovider -p arm_pytest_plugin -m "not network" -q "${tests[@]}" \
  || rc=$?
# Exit code 5 (nothing collected) is a failure here too: the step must prove something.
[ "$rc" = 0 ] || die "core tests under qemu failed on $ARCH (pytest exit code $rc)"

# --- 6. One reference computation on both architectures -------------------------------------
phase "reference computation: host vs $ARCH"
host_arch=$($PY -c 'import platform; print(platform.machine())')
$PY .ci/arm_reference.py --out "$CACHE/reference-$host_arch.json"
guest .ci/arm_reference.py --out "$CACHE/reference-$ARCH.json"
$PY .ci/arm_reference.py --compare "$CACHE/reference-$host_arch.json" \
  "$CACHE/reference-$ARCH.json"

phase "done"
