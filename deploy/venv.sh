#!/usr/bin/env bash
# Usage: deploy/venv.sh VENV REQUIREMENTS
# Makes VENV a Python venv holding exactly the pinned REQUIREMENTS (from PyPI), installing
# python3-venv with apt-get when it is missing. Reused as long as the pins and the interpreter
# are unchanged. Used by deploy/validate.sh (deployment file tools) and deploy/test.sh
# (schemathesis for the OpenAPI contract test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=$1
requirements=$2
case $venv in /*) ;; *) venv=$PWD/$venv ;; esac
python=${PYTHON:-python3}

log() { echo "venv: $*" >&2; }

# What the venv was made from: the pins and the interpreter's version.
stamp() { echo "$(sha256sum "$requirements" | cut -d' ' -f1) $("$python" -V 2>&1)"; }

if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$(stamp)" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian ships venv apart from python3.
    command -v apt-get >/dev/null || {
      log "$python with its venv module is needed: install python3 and python3-venv"
      exit 1
    }
    log "installing python3-venv"
    sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
    apt_install() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null; }
    apt_install || { $sudo apt-get update -qq && apt_install; }
  fi
  log "installing $requirements into $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$requirements"
  stamp >"$venv/.installed"
fi
