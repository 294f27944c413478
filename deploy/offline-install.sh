#!/usr/bin/env bash
# Offline installation of Qiming (启明) from a wheelhouse, for air-gapped hosts (e.g. Kylin OS).
#
#   On a connected machine, in the source tree:
#     deploy/offline-install.sh download [--extras LIST] [--arch aarch64|x86_64]
#                                        [--python-version 3.11] [--glibc 2.28] [--out DIR] [--wheels DIR]
#     (defaults: extras dm,opengauss,modeling,nats (the full product), this machine's architecture and
#      Python version, glibc 2.28 as on Kylin V10; --wheels: a directory of extra wheels searched too)
#     -> DIR/ (default dist/qiming-offline-<version>+<build>-<arch>) and DIR.tar.gz:
#        wheelhouse/ (every wheel), deploy/ (all of it: this script, the systemd unit, the example configs),
#        docs/ (the manuals), EXTRAS, BUILD (what was built, from which commit), SHA256SUMS
#        The Qiming wheel's version carries the build: 0.2.0+g<commit> (0.2.0+g<commit>.dirty for a tree
#        with changes, 0.2.0+b<UTC time> outside git), so `qiming version` tells two builds apart.
#        It includes the collector's event check in C when this machine has a C compiler and is of the
#        target's architecture and Python version; otherwise the wheel is pure Python (BUILD says which).
#
#   On the target, in the unpacked bundle:
#     deploy/offline-install.sh install [--prefix /opt/qiming] [--python python3.11] [--extras LIST]
#     -> PREFIX/venv with the bundle's dependencies (pip --no-index --find-links wheelhouse; the extras the
#        bundle was downloaded with, unless --extras says otherwise), then the bundle's own Qiming wheel,
#        reinstalled by path even when the same version is installed, and checked file by file.
#     Exit 2: the bundle or an option is refused (nothing changed); exit 1: the installation failed.
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
BUILD_COMMIT=""
BUILD_TREE=""
BUILD_TIME=""
BUILD_LABEL=""
BUNDLE_WHEEL=""
BUNDLE_BUILD=""

die() {
  printf 'offline-install: error: %s\n' "$*" >&2
  exit 2
}

fail() {
  # The installation itself went wrong (after the venv was touched).
  printf 'offline-install: error: %s\n' "$*" >&2
  exit 1
}

info() {
  printf 'offline-install: %s\n' "$*"
}

usage() {
  sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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

build_identity() {
  # BUILD_COMMIT, BUILD_TREE (clean, modified or unknown), BUILD_TIME and BUILD_LABEL, the local version label.
  BUILD_TIME="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local top
  BUILD_COMMIT=""
  BUILD_TREE="unknown"
  # Only the tree's own repository: a source archive unpacked inside another repository has no commit.
  top="$(git -C "$ROOT_DIR" rev-parse --show-toplevel 2>/dev/null || true)"
  if [[ -n "$top" && "$(cd "$top" && pwd -P)" == "$(cd "$ROOT_DIR" && pwd -P)" ]]; then
    BUILD_COMMIT="$(git -C "$ROOT_DIR" rev-parse HEAD)"
    if [[ -z "$(git -C "$ROOT_DIR" status --porcelain)" ]]; then
      BUILD_TREE="clean"
      BUILD_LABEL="g${BUILD_COMMIT:0:12}"
    else
      BUILD_TREE="modified"  # the commit alone does not say what was built: BUILD has the wheel's sha256
      BUILD_LABEL="g${BUILD_COMMIT:0:12}.dirty"
    fi
  else
    BUILD_LABEL="b${BUILD_TIME//[^0-9]/}"
  fi
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
  build_identity
  local full_version="$version+$BUILD_LABEL"
  [[ "$version" == *+* ]] && full_version="$version.$BUILD_LABEL"
  # The services record their version in a 32-character column (ListInstances).
  [[ "${#full_version}" -le 32 ]] || die "version $full_version is longer than 32 characters"
  OUT="${OUT:-$ROOT_DIR/dist/qiming-offline-$full_version-$ARCH}"

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

  info "building the Qiming $full_version wheel (commit ${BUILD_COMMIT:-unknown}, tree $BUILD_TREE)"
  # The collector's C extension (hatch_build.py) runs only where it was compiled: Linux with glibc, the same
  # architecture and Python version. For another target the wheel is pure Python (events checked in Python).
  local pure=0 host_py host_libc
  host_py="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  host_libc="$("$PYTHON" -c 'import platform; print(platform.libc_ver()[0] or "none")')"
  if [[ "$(uname -s)" != Linux || "$host_libc" != glibc || "$ARCH" != "$(uname -m)" || "$py_version" != "$host_py" ]]
  then
    pure=1
    info "the target (Linux/glibc, $ARCH, Python $py_version) is not this machine ($(uname -s)/$host_libc," \
      "$(uname -m), Python $host_py): a pure-Python Qiming wheel, without the collector's event check in C" \
      "(build on such a machine to have it)"
  fi
  QIMING_PURE_PYTHON="$pure" "$BUILD_VENV/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$OUT/wheelhouse" \
    "$ROOT_DIR"
  local wheel native
  wheel="$(find "$OUT/wheelhouse" -maxdepth 1 -name 'qiming-*.whl' -print -quit)"
  [[ -n "$wheel" ]] || die "the Qiming wheel was not built"
  native="no"
  [[ "$wheel" == *-py3-none-any.whl ]] || native="yes"
  [[ "$native" == "yes" || "$pure" -eq 1 ]] \
    || info "warning: the collector's event check in C was not built (no C compiler or Python headers here?)"
  # Releases before 0.2.0 were all 0.1.0, and two builds of one release differ: the label tells them apart.
  wheel="$("$BUILD_VENV/bin/python" - "$wheel" "$BUILD_LABEL" <<'PY'
import base64, hashlib, os, sys, zipfile

path, label = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(path) as z:
    entries = [(i, z.read(i)) for i in z.infolist()]
old_dir = next(i.filename.split("/")[0] for i, _ in entries if i.filename.split("/")[0].endswith(".dist-info"))
name, old = old_dir[: -len(".dist-info")].rsplit("-", 1)
new = old + ("." if "+" in old else "+") + label
new_dir = f"{name}-{new}.dist-info"
out = os.path.join(os.path.dirname(path), os.path.basename(path).replace(f"{name}-{old}-", f"{name}-{new}-", 1))
record = []
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for info, data in entries:
        filename = info.filename
        if filename.endswith("/"):
            continue  # a directory entry: the files name their directories
        if filename.startswith(old_dir + "/"):
            filename = new_dir + filename[len(old_dir) :]
        if filename == f"{new_dir}/RECORD":
            continue
        if filename == f"{new_dir}/METADATA":
            lines = data.decode().split("\n")
            at = next(n for n, line in enumerate(lines) if line.startswith("Version: "))  # the header's, not the README's
            lines[at] = f"Version: {new}"
            data = "\n".join(lines).encode()
        moved = zipfile.ZipInfo(filename, info.date_time)
        moved.external_attr, moved.compress_type = info.external_attr, zipfile.ZIP_DEFLATED
        z.writestr(moved, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{filename},sha256={digest},{len(data)}\n")
    record.append(f"{new_dir}/RECORD,,\n")
    z.writestr(zipfile.ZipInfo(f"{new_dir}/RECORD", entries[0][0].date_time), "".join(record))
os.remove(path)
print(out)
PY
)"

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
  local wanted resolver="$wheel"
  if [[ "$native" == "yes" ]]; then
    # A wheel with the C extension is tagged linux_<arch> (built here, not by a manylinux toolchain; it needs glibc
    # 2.14 or newer and CPython's own symbols only), which the target platforms above do not admit. Its
    # dependencies are those of the same release's pure wheel: that one is resolved, then left out of the bundle.
    QIMING_PURE_PYTHON=1 "$BUILD_VENV/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$BUILD_VENV/pure" \
      "$ROOT_DIR"
    resolver="$(find "$BUILD_VENV/pure" -maxdepth 1 -name 'qiming-*.whl' -print -quit)"
    [[ -n "$resolver" ]] || die "the pure-Python Qiming wheel was not built"
  fi
  wanted="$(requirement "$resolver")"
  "$BUILD_VENV/bin/python" -m pip download --quiet --dest "$OUT/wheelhouse" "${target[@]}" "$wanted"
  [[ "$native" == "no" ]] || rm -f "$OUT/wheelhouse/$(basename "$resolver")"

  # The whole of deploy/ (its README links the config examples) and the docs it links to: the target is offline.
  cp -r "$SCRIPT_DIR/." "$OUT/deploy/"
  mkdir -p "$OUT/docs"
  cp -r "$ROOT_DIR/docs/." "$OUT/docs/"
  printf '%s\n' "$EXTRAS" >"$OUT/EXTRAS"
  {
    printf 'version=%s\n' "$full_version"
    printf 'wheel=%s\n' "$(basename "$wheel")"
    printf 'wheel_sha256=%s\n' "$(sha256sum "$wheel" | cut -d ' ' -f 1)"
    printf 'native_event_check=%s\n' "$native"
    printf 'commit=%s\n' "${BUILD_COMMIT:-unknown}"
    printf 'tree=%s\n' "$BUILD_TREE"
    printf 'built_at=%s\n' "$BUILD_TIME"
  } >"$OUT/BUILD"
  (cd "$OUT" && find wheelhouse deploy docs EXTRAS BUILD ! -type d -print0 | sort -z | xargs -0 sha256sum >SHA256SUMS)

  tar -C "$(dirname "$OUT")" -czf "$OUT.tar.gz" "$(basename "$OUT")"
  local count
  count="$(find "$OUT/wheelhouse" -name '*.whl' -printf x | wc -c)"
  info "$count wheels in $OUT/wheelhouse; Qiming: $(basename "$wheel")"
  info "bundle: $OUT.tar.gz (copy it to the target, unpack, run deploy/offline-install.sh install)"
}

build_value() {
  # $1: key in the bundle's BUILD file
  sed -n "s/^$1=//p" "$ROOT_DIR/BUILD" | head -n 1
}

check_bundle() {
  local bundle="$ROOT_DIR"
  # Every bundle has the sums (download writes them): a missing file is a damaged copy or a tampered bundle.
  [[ -f "$bundle/SHA256SUMS" ]] || die "no SHA256SUMS in $bundle: the bundle is incomplete or was changed; copy it again"
  info "checking SHA256SUMS"
  (cd "$bundle" && sha256sum --quiet --check SHA256SUMS) || die "the bundle is damaged or was changed"
  # sha256sum --check skips files the list does not name, and pip would take a wheel added to the wheelhouse
  # (or left there by an older bundle unpacked in the same directory): every file must be listed.
  local -A listed=()
  local sum name
  while read -r sum name; do
    listed["$name"]=1
  done <"$bundle/SHA256SUMS"
  while IFS= read -r -d '' name; do
    [[ -n "${listed[$name]:-}" ]] \
      || die "$name is not listed in SHA256SUMS: it was added after the bundle was built (or is left from another bundle unpacked in the same directory); unpack the bundle into an empty directory"
  done < <(cd "$bundle" && find wheelhouse deploy docs ! -type d -print0 2>/dev/null; cd "$bundle" && for name in EXTRAS BUILD; do [[ -e "$name" ]] && printf '%s\0' "$name"; done)
  [[ -f "$bundle/BUILD" ]] || die "no BUILD in $bundle: the bundle is incomplete or was made by an older script; copy it again"
  BUNDLE_WHEEL="$(build_value wheel)"
  # Pure Python, or with the collector's C extension for one CPython on Linux (its tag checked by pip at install).
  [[ "$BUNDLE_WHEEL" =~ ^qiming-[A-Za-z0-9.+_!]+-(py3-none-any|cp3[0-9]+-cp3[0-9]+-linux_(x86_64|aarch64))\.whl$ ]] \
    || die "BUILD names no Qiming wheel"
  [[ -n "${listed[wheelhouse/$BUNDLE_WHEEL]:-}" ]] || die "the bundle has no wheelhouse/$BUNDLE_WHEEL (named in BUILD)"
  local want got
  want="$(build_value wheel_sha256)"
  got="$(sha256sum "$bundle/wheelhouse/$BUNDLE_WHEEL" | cut -d ' ' -f 1)"
  [[ "$want" == "$got" ]] || die "wheelhouse/$BUNDLE_WHEEL is not the wheel BUILD names (sha256 $got, BUILD says $want)"
  BUNDLE_BUILD="qiming $(build_value version), commit $(build_value commit) (tree $(build_value tree)), built $(build_value built_at), wheel sha256 $want"
}

verify_installed() {
  # $1: the venv's python, $2: the wheel. Every file of the wheel must be in the venv as the wheel has it, and the
  # venv must hold one Qiming distribution: the one whose code `qiming` runs. -I: as the units run it, no PYTHONPATH.
  "$1" -I - "$2" <<'PY'
import base64, csv, hashlib, sys, zipfile
from importlib.metadata import distributions
from pathlib import Path

wheel = sys.argv[1]
found = [d for d in distributions() if (d.metadata["Name"] or "").lower() == "qiming"]
where = ", ".join(sorted(str(getattr(d, "_path", d.version)) for d in found))
if len(found) != 1:
    sys.exit(f"the virtual environment holds {len(found)} Qiming distributions ({where or 'none'}), not one")
dist = found[0]
with zipfile.ZipFile(wheel) as z:
    record = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD") and n.count("/") == 1)
    rows = [row for row in csv.reader(z.read(record).decode().splitlines()) if row]
    version = z.read(record.replace("/RECORD", "/METADATA")).decode()
version = next(line[len("Version: "):] for line in version.splitlines() if line.startswith("Version: "))
if dist.version != version:
    sys.exit(f"installed: qiming {dist.version}; the bundle's wheel is {version}")
checked = 0
for path, digest, _size in rows:
    if not digest or path.split("/")[0].endswith(".data"):
        continue  # RECORD itself; .data/ files are moved by the installer
    algorithm, _, value = digest.partition("=")
    target = Path(dist.locate_file(path))
    try:
        data = target.read_bytes()
    except OSError:
        sys.exit(f"{target}: missing (the wheel has {path})")
    have = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=").decode()
    if have != value:
        sys.exit(f"{target}: differs from the wheel's {path}")
    checked += 1
print(f"{checked} files")
PY
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
  check_bundle
  info "bundle: $BUNDLE_BUILD"

  local venv="$PREFIX/venv"
  local wheel="$wheelhouse/$BUNDLE_WHEEL"
  # The bundle is the only source: no find-links, constraints or index from pip's configuration or environment.
  local var
  for var in $(compgen -e PIP_); do
    unset "$var"
  done
  export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
  info "creating $venv"
  mkdir -p "$PREFIX"
  "$PYTHON" -m venv "$venv"
  local wanted
  wanted="$(requirement "$wheel")"
  info "installing the dependencies of $(basename "$wanted") from $wheelhouse (no network)"
  # eager: every dependency at the bundle's version (the highest there), not only those that no longer fit.
  "$venv/bin/python" -m pip install --quiet --no-index --find-links "$wheelhouse" \
    --upgrade --upgrade-strategy eager "$wanted" || fail "pip could not install the bundle's wheels into $venv"
  # pip keeps an installed Qiming of the same version ("Requirement already satisfied"), and releases before 0.2.0
  # were all 0.1.0 (two builds of one release share it too): the bundle's own wheel, by path, replaces what is there.
  info "installing $BUNDLE_WHEEL"
  "$venv/bin/python" -m pip install --quiet --no-index --no-deps --force-reinstall "$wheel" \
    || fail "pip could not install $wheel into $venv"
  local checked
  checked="$(verify_installed "$venv/bin/python" "$wheel" 2>&1)" \
    || fail "$venv does not hold the bundle's Qiming: $checked"
  info "verified: $venv holds $BUNDLE_WHEEL ($checked as in the wheel)"
  "$venv/bin/qiming" version
  info "installed: $venv/bin/qiming, $BUNDLE_BUILD"
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
