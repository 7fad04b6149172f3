#!/usr/bin/env bash
# Validates the deployment files offline: the Dockerfile (BuildKit's parser, structure, hadolint),
# docker-compose.yml (Compose Specification schema, references) and every manifest in
# deploy/kubernetes (Kubernetes schemas in strict mode for KUBERNETES_VERSION, default 1.31; the
# KEDA kinds against KEDA 2.16.1's; references between them; the kustomization). Needs no Docker
# engine, no cluster and no network but PyPI: the tools (deploy/validate-requirements.txt) go
# into a venv under target/ (VALIDATE_VENV), installed once and reused while the pins are unchanged.
# Arguments replace the default paths (Dockerfile docker-compose.yml deploy/kubernetes).
# Exits non-zero when any check fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=${VALIDATE_VENV:-target/deploy-validate/venv}
case $venv in /*) ;; *) venv=$PWD/$venv ;; esac
requirements=deploy/validate-requirements.txt
python=${PYTHON:-python3}

log() { echo "validate: $*" >&2; }

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
  log "installing the tools into $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$requirements"
  stamp >"$venv/.installed"
fi

PATH="$venv/bin:$PATH" exec "$venv/bin/python" deploy/validate.py "$@"
