#!/usr/bin/env bash
# Offline installation of Qiming (启明) from a wheelhouse, for air-gapped hosts (e.g. Kylin OS).
#
#   On a connected machine, in the source tree:
#     deploy/offline-install.sh download [--extras LIST] [--arch aarch64|x86_64]
#                                        [--python-version 3.11] [--glibc 2.28] [--out DIR] [--wheels DIR]
#     (defaults: extras dm,opengauss,modeling,nats (the full product), this machine's architecture and
#      Python version, glibc 2.28 as on Kylin V10; --wheels: a directory of extra wheels searched too)
#     -> DIR/ (default dist/qiming-offline-<version>-<arch>) and DIR.tar.gz:
#        wheelhouse/ (every wheel), deploy/ (all of it: this script, the systemd unit, the example configs),
#        docs/ (the manuals), EXTRAS, SHA256SUMS
#
#   On the target, in the unpacked bundle:
#     deploy/offline-install.sh install [--prefix /opt/qiming] [--python python3.11] [--extras LIST]
#     -> PREFIX/venv with Qiming installed by `pip install --no-index --find-links wheelhouse`
#        (with the extras the bundle was downloaded with, unless --extras says otherwise)
#
# download uses the network (PyPI or the index pip is configured with); install never does.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(dirname "$SCRIPT_DIR")"

# The full product: both server databases' drivers, svc_modeling's libraries and the JetStream log client.
EXTRAS_DEFAULT="dm,opengauss,modeling,nats"
EXTRAS_KNOWN="dm opengauss modeling nats load"
EXTRAS=""
EXTRAS_SET=0
PYTHON="${PYTHON:-python3}"
PREFIX="/opt/qiming"
ARCH=""
PY_VERSION=""
GLIBC="2.28"
OUT=""
EXTRA_WHEELS=""
BUILD_VENV=""

die() {
  printf 'offline-install: error: %s\n' "$*" >&2
  exit 2
}

info() {
  printf 'offline-install: %s\n' "$*"
}

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

need_value() {
  # $1: option name, $2: number of arguments left (including the option)
  [[ "$2" -ge 2 ]] || die "$1 needs a value"
}

parse_options() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --extras) need_value "$1" "$#"; EXTRAS="$2"; EXTRAS_SET=1; shift 2 ;;
      --python) need_value "$1" "$#"; PYTHON="$2"; shift 2 ;;
      --prefix) need_value "$1" "$#"; PREFIX="$2"; shift 2 ;;
      --arch) need_value "$1" "$#"; ARCH="$2"; shift 2 ;;
      --python-version) need_value "$1" "$#"; PY_VERSION="$2"; shift 2 ;;
      --glibc) need_value "$1" "$#"; GLIBC="$2"; shift 2 ;;
      --out) need_value "$1" "$#"; OUT="$2"; shift 2 ;;
      --wheels) need_value "$1" "$#"; EXTRA_WHEELS="$2"; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option: $1 (see --help)" ;;
    esac
  done
  [[ "$EXTRAS" =~ ^[a-z,]*$ ]] || die "--extras: comma-separated extra names, e.g. dm,opengauss"
  # Checked before anything is built or removed: a typo must not cost the bundle built earlier.
  [[ "$GLIBC" =~ ^2\.[0-9]+$ ]] || die "--glibc: a version such as 2.28"
  [[ -z "$ARCH" || "$ARCH" =~ ^(x86_64|aarch64)$ ]] || die "--arch: x86_64 or aarch64"
  [[ -z "$PY_VERSION" || "$PY_VERSION" =~ ^3\.[0-9]+$ ]] || die "--python-version: a version such as 3.11"
  local extra
  for extra in ${EXTRAS//,/ }; do
    [[ " $EXTRAS_KNOWN " == *" $extra "* ]] || die "--extras: unknown extra '$extra' (known: ${EXTRAS_KNOWN// /, })"
  done
}

warn_missing_extras() {
  # What a bundle or an install without some extra cannot do: found now, not on the air-gapped host later.
  local extra
  for extra in ${EXTRAS_DEFAULT//,/ }; do
    [[ ",$EXTRAS," == *",$extra,"* ]] && continue
    case "$extra" in
      modeling) info "warning: without the 'modeling' extra, qiming@modeling starts but answers every call UNIMPLEMENTED" ;;
      nats) info "warning: without the 'nats' extra, svc_collect cannot use log_backend = \"jetstream\"" ;;
      dm) info "warning: without the 'dm' extra, no service can use a Dameng (dm+dmPython://) database" ;;
      opengauss) info "warning: without the 'opengauss' extra, no service can use an openGauss database" ;;
    esac
  done
}

check_python() {
  command -v "$PYTHON" >/dev/null 2>&1 || die "no Python interpreter '$PYTHON' (use --python)"
  local found
  found="$("$PYTHON" -c 'import platform; print(platform.python_version())')"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$PYTHON is Python $found; Qiming needs Python 3.11 or newer"
}

requirement() {
  # $1: package name or wheel path
  if [[ -n "$EXTRAS" ]]; then
    printf '%s[%s]' "$1" "$EXTRAS"
  else
    printf '%s' "$1"
  fi
}

cmd_download() {
  [[ -f "$ROOT_DIR/pyproject.toml" ]] || die "download runs in the Qiming source tree ($ROOT_DIR has no pyproject.toml)"
  check_python
  local py_version version
  ARCH="${ARCH:-$(uname -m)}"
  py_version="${PY_VERSION:-$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')}"
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT_DIR/pyproject.toml" | head -n 1)"
  [[ -n "$version" ]] || die "cannot read the version from pyproject.toml"
  OUT="${OUT:-$ROOT_DIR/dist/qiming-offline-$version-$ARCH}"

  [[ "$EXTRAS_SET" -eq 1 ]] || EXTRAS="$EXTRAS_DEFAULT"
  info "extras: ${EXTRAS:-none}"
  warn_missing_extras
  BUILD_VENV="$(mktemp -d)"
  trap 'rm -rf "$BUILD_VENV"' EXIT
  info "using a throw-away virtual environment for the build: $BUILD_VENV"
  "$PYTHON" -m venv "$BUILD_VENV"
  "$BUILD_VENV/bin/python" -m pip install --quiet --upgrade pip

  rm -rf "$OUT"
  mkdir -p "$OUT/wheelhouse" "$OUT/deploy"

  info "building the Qiming $version wheel"
  "$BUILD_VENV/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$OUT/wheelhouse" "$ROOT_DIR"
  local wheel
  wheel="$(find "$OUT/wheelhouse" -maxdepth 1 -name 'qiming-*.whl' -print -quit)"
  [[ -n "$wheel" ]] || die "the Qiming wheel was not built"

  # Only wheels (the target has no compiler), and only wheels for the target's glibc: the connected
  # machine is often newer, and pip would otherwise pick wheels that need its newer glibc. The Qiming
  # wheel is named by path, so no package of the same name on an index can stand in for it.
  local -a target=(--only-binary=:all: --python-version "$py_version" --implementation cp
    --abi "cp${py_version//./}" --platform "manylinux2014_$ARCH")
  local glibc_minor
  for ((glibc_minor = 5; glibc_minor <= ${GLIBC#2.}; glibc_minor++)); do
    target+=(--platform "manylinux_2_${glibc_minor}_$ARCH")
  done
  if [[ -n "$EXTRA_WHEELS" ]]; then
    [[ -d "$EXTRA_WHEELS" ]] || die "--wheels: $EXTRA_WHEELS is not a directory"
    target+=(--find-links "$(cd "$EXTRA_WHEELS" && pwd)")
  fi
  info "downloading wheels for Python $py_version on $ARCH with glibc $GLIBC or newer"
  local wanted
  wanted="$(requirement "$wheel")"
  "$BUILD_VENV/bin/python" -m pip download --quiet --dest "$OUT/wheelhouse" "${target[@]}" "$wanted"

  # The whole of deploy/ (its README links the config examples) and the docs it links to: the target is offline.
  cp -r "$SCRIPT_DIR/." "$OUT/deploy/"
  mkdir -p "$OUT/docs"
  cp -r "$ROOT_DIR/docs/." "$OUT/docs/"
  printf '%s\n' "$EXTRAS" >"$OUT/EXTRAS"
  (cd "$OUT" && find wheelhouse deploy docs EXTRAS -type f -print0 | sort -z | xargs -0 sha256sum >SHA256SUMS)

  tar -C "$(dirname "$OUT")" -czf "$OUT.tar.gz" "$(basename "$OUT")"
  local count
  count="$(find "$OUT/wheelhouse" -name '*.whl' -printf x | wc -c)"
  info "$count wheels in $OUT/wheelhouse"
  info "bundle: $OUT.tar.gz (copy it to the target, unpack, run deploy/offline-install.sh install)"
}

cmd_install() {
  local bundle="$ROOT_DIR"
  local wheelhouse="$bundle/wheelhouse"
  [[ -d "$wheelhouse" ]] || die "no wheelhouse at $wheelhouse: run install from an unpacked bundle"
  check_python
  if [[ "$EXTRAS_SET" -eq 0 ]]; then
    # The extras the bundle was downloaded with.
    EXTRAS="$EXTRAS_DEFAULT"
    [[ -f "$bundle/EXTRAS" ]] && EXTRAS="$(<"$bundle/EXTRAS")"
  fi
  info "extras: ${EXTRAS:-none}"
  warn_missing_extras
  # Every bundle has the sums (download writes them): a missing file is a damaged copy or a tampered bundle.
  [[ -f "$bundle/SHA256SUMS" ]] || die "no SHA256SUMS in $bundle: the bundle is incomplete or was changed; copy it again"
  info "checking SHA256SUMS"
  (cd "$bundle" && sha256sum --quiet --check SHA256SUMS) || die "the bundle is damaged or was changed"

  local venv="$PREFIX/venv"
  info "creating $venv"
  mkdir -p "$PREFIX"
  "$PYTHON" -m venv "$venv"
  local wanted
  wanted="$(requirement qiming)"
  info "installing $wanted from $wheelhouse (no network)"
  "$venv/bin/python" -m pip install --quiet --no-index --find-links "$wheelhouse" --upgrade "$wanted"
  "$venv/bin/qiming" version
  info "installed: $venv/bin/qiming"
  info "next: create the user, /etc/qiming and the units as described in $bundle/deploy/README.md"
}

main() {
  [[ $# -ge 1 ]] || { usage >&2; exit 2; }
  local mode="$1"
  shift
  parse_options "$@"
  case "$mode" in
    download) cmd_download ;;
    install) cmd_install ;;
    -h | --help) usage ;;
    *) die "unknown mode: $mode (download or install)" ;;
  esac
}

main "$@"
