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
bash deploy/venv.sh "$venv" deploy/validate-requirements.txt

PATH="$venv/bin:$PATH" exec "$venv/bin/python" deploy/validate.py "$@"
