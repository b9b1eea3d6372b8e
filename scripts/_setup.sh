#!/usr/bin/env bash
# Shared set-up for scripts/demo, scripts/test and scripts/bench: Debian packages (when root)
# and the project's virtual environment in .venv. Sourced, not run.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KIOSK_EDGE_VENV:-$REPO_ROOT/.venv}"
export REPO_ROOT VENV

# Install the Debian packages that are missing; without root, say what to install instead.
ensure_apt() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "kiosk-edge: missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
        return 1
    fi
    echo "Installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Create the venv if needed and install the project (editable) with the given extras.
# The install is skipped when pyproject.toml and the extras are unchanged since the last one,
# so a second `scripts/demo` starts at once and works offline (KIOSK_EDGE_REINSTALL=1 forces it).
ensure_venv() {
    local extras="${1:-}"
    local python="${PYTHON:-python3}"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "Creating the virtual environment in $VENV"
        "$python" -m venv "$VENV"
        "$VENV/bin/pip" install -q --upgrade pip
    fi
    local spec="$REPO_ROOT"
    if [ -n "$extras" ]; then
        spec="${REPO_ROOT}[${extras}]"
    fi
    local stamp_file="$VENV/.kiosk-edge-installed"
    local stamp
    stamp="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1) $spec"
    if [ -z "${KIOSK_EDGE_REINSTALL:-}" ] && [ -f "$stamp_file" ] &&
        grep -qxF "$stamp" "$stamp_file"; then
        return 0
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$spec"
    echo "$stamp" >>"$stamp_file"
}

# The package lists are used by the scripts that source this file.
# shellcheck disable=SC2034
# Packages the appliance needs at run time (python3-venv: Debian's Python comes without it;
# zbar for pyzbar; Mosquitto as the local broker; cairo for cairosvg, which draws SVG product
# images as PNG for e-mails; gcc and python3-dev because evdev has no wheels and builds).
RUNTIME_APT=(python3-venv python3-dev gcc libzbar0 mosquitto libcairo2)
# shellcheck disable=SC2034
# Packages the tests need: Chromium for browser tests, D-Bus and headers for dbus-python,
# python3-dev (Python.h, and libc6-dev with it) as dbus-python and evdev build from source,
# systemd-analyze for unit checks, wrk for load benchmarks, openssl for test certificates.
TEST_APT=(python3-venv python3-dev libzbar0 mosquitto chromium dbus libdbus-1-dev libglib2.0-dev
          pkg-config gcc systemd openssl wrk fonts-dejavu-core libcairo2)
