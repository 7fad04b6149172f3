"""Offline checks of the deployment files; run by deploy/validate.sh inside its venv.

usage: validate.py [PATH ...]   (default: Dockerfile docker-compose.yml deploy/kubernetes)

A path named Dockerfile* is a Dockerfile, *compose*.y*ml a Compose file, a directory or any other
YAML file holds Kubernetes manifests. Prints one line per check and exits 1 if any failed.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dockerfile
import jsonschema
import yaml
from kubernetes_validate import utils as k8s

KUBERNETES_VERSION = os.environ.get("KUBERNETES_VERSION", "1.31")
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}

failures = 0
passes = 0


def ok(what):
    global passes
    passes += 1
    print(f"ok   {what}")


def fail(what):
    global failures
    failures += 1
    print(f"FAIL {what}")


def check(condition, what, why):
    if condition:
        ok(what)
    else:
        fail(f"{what}: {why}")
    return condition


# ---------------------------------------------------------------- Dockerfile

INSTRUCTIONS = {
    "from", "run", "cmd", "label", "maintainer", "expose", "env", "add", "copy", "entrypoint",
    "volume", "user", "workdir", "arg", "onbuild", "stopsignal", "healthcheck", "shell",
}


def validate_dockerfile(path):
    try:
        commands = dockerfile.parse_file(str(path))
    except dockerfile.GoParseError as e:
        return fail(f"{path}: parses: {e}")
    unknown = [f"line {c.start_line}: {c.cmd}" for c in commands if c.cmd.lower() not in INSTRUCTIONS]
    check(not unknown, f"{path}: every instruction is known", ", ".join(unknown))
    first = next((c for c in commands if c.cmd.lower() != "arg"), None)
    check(first is not None and first.cmd.lower() == "from", f"{path}: starts with FROM",
          "the first instruction after ARGs is not FROM")

    stages, names = [], []
    for c in commands:
        if c.cmd.lower() == "from":
            stages.append([])
            value = [v.lower() for v in c.value]
            names.append(value[2] if len(value) == 3 and value[1] == "as" else None)
        elif stages:
            stages[-1].append(c)
    dupes = {n for n in names if n and names.count(n) > 1}
    check(not dupes, f"{path}: stage names are unique", f"repeated: {sorted(dupes)}")
    bad_from = []
    for i, stage in enumerate(stages):
        for c in stage:
            for flag in c.flags:
                if c.cmd.lower() == "copy" and flag.startswith("--from="):
                    source = flag.split("=", 1)[1].lower()
                    earlier = names[:i]
                    if not (source in earlier or (source.isdigit() and int(source) < i)
                            or re.search(r"[:/@]", source)):
                        bad_from.append(f"line {c.start_line}: {flag}")
    check(not bad_from, f"{path}: COPY --from names an earlier stage", ", ".join(bad_from))

    final = stages[-1] if stages else []
    users = [c for c in final if c.cmd.lower() == "user"]
    user = users[-1].value[0] if users else None
    check(user is not None and user.split(":")[0] not in ("root", "0"),
          f"{path}: the final stage runs as a non-root USER", f"USER is {user or 'not set (root)'}")
    entry = [c for c in final if c.cmd.lower() == "entrypoint"]
    check(entry and entry[-1].json, f"{path}: ENTRYPOINT in exec form (signals reach the binary)",
          "no ENTRYPOINT in the final stage, or in shell form")

    hadolint = shutil.which("hadolint")
    if not hadolint:
        return fail(f"{path}: hadolint: not installed")
    run = subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True)
    check(run.returncode == 0, f"{path}: hadolint {hadolint_version(hadolint)}",
          "\n" + (run.stdout + run.stderr).strip())


def hadolint_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"\d+\.\d+\.\d+", out)
    return match.group(0) if match else "?"


# ---------------------------------------------------------------- Compose


def validate_compose(path):
    run = subprocess.run(
        ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True,
    )
    if not check(run.returncode == 0, f"{path}: Compose Specification schema",
                 "\n" + (run.stdout + run.stderr).strip()):
        return
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services") or {}
    declared_volumes = set(doc.get("volumes") or {})
    problems = []
    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"{name}: neither image nor build")
        depends = service.get("depends_on") or {}
        for target in depends:
            if target not in services:
                problems.append(f"{name}: depends_on unknown service {target}")
            elif isinstance(depends, dict) and (depends[target] or {}).get(
                    "condition") == "service_healthy" and "healthcheck" not in services[target]:
                problems.append(f"{name}: waits for {target} to be healthy, which has no healthcheck")
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env if "=" in item)
        if "SHUTDOWN_GRACE_SECS" in env:
            stop = seconds(service.get("stop_grace_period", "10s"))
            if stop is None or stop <= int(env["SHUTDOWN_GRACE_SECS"]):
                problems.append(f"{name}: stop_grace_period {service.get('stop_grace_period', '10s')} "
                                f"is not above SHUTDOWN_GRACE_SECS {env['SHUTDOWN_GRACE_SECS']}")
        for volume in service.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source and not source.startswith(("/", ".", "~", "$")) and source not in declared_volumes:
                problems.append(f"{name}: volume {source} is not declared under volumes:")
    check(not problems, f"{path}: dependencies, volumes, stop grace periods", "; ".join(problems))


def seconds(duration):
    """A Compose duration ("1m30s", "40s", "500ms") in seconds; None if it is not one."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", str(duration))
    if not parts or "".join(n + u for n, u in parts) != str(duration):
        return None
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * unit[u] for n, u in parts)


# ---------------------------------------------------------------- Kubernetes and KEDA


def keda_schemas():
    """Strict JSON schemas of the KEDA kinds, from the models generated from KEDA's CRDs."""
    from cloudcoil.models.keda import v1alpha1

    def strict(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                strict(value)
        elif isinstance(node, list):
            for value in node:
                strict(value)
        return node

    schemas = {}
    for kind in KEDA_KINDS:
        schema = getattr(v1alpha1, kind).model_json_schema(by_alias=True, mode="validation")
        # apiVersion and kind are optional in the models (they default them); not in a manifest.
        schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
        schemas[kind] = strict(schema)
    return schemas


def manifest_files(path):
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    return [path]


def validate_kubernetes(paths):
    resources = []  # (file, resource)
    kustomizations = []
    for path in paths:
        for file in manifest_files(path):
            try:
                docs = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
            except yaml.YAMLError as e:
                fail(f"{file}: YAML: {e}")
                continue
            if file.name == "kustomization.yaml":
                kustomizations.extend((file, d) for d in docs)
            else:
                resources.extend((file, d) for d in docs)

    keda = None
    for file, resource in resources:
        if not isinstance(resource, dict) or not {"apiVersion", "kind"} <= set(resource):
            fail(f"{file}: a document without apiVersion and kind")
            continue
        kind = resource["kind"]
        name = (resource.get("metadata") or {}).get("name", "?")
        what = f"{file}: {kind}/{name}"
        if kind in KEDA_KINDS and resource["apiVersion"] == "keda.sh/v1alpha1":
            keda = keda or keda_schemas()
            errors = sorted(jsonschema.Draft202012Validator(keda[kind]).iter_errors(resource),
                            key=lambda e: list(e.absolute_path))
            check(not errors, f"{what} against KEDA 2.16.1's schema (strict)",
                  "; ".join(f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                            for e in errors[:5]))
            continue
        try:
            version = k8s.validate(resource, KUBERNETES_VERSION, strict=True)
            ok(f"{what} against Kubernetes {version} (strict)")
        except k8s.ValidationError as e:
            fail(f"{what} against Kubernetes {e.version} (strict): "
                 f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}")
        except k8s.SchemaNotFoundError as e:
            fail(f"{what}: {e.message}")

    cross_check([r for _, r in resources if isinstance(r, dict)])
    for file, kustomization in kustomizations:
        validate_kustomization(file, kustomization)


def pod_spec(resource):
    spec = resource.get("spec") or {}
    if resource.get("kind") in WORKLOADS:
        return ((spec.get("template") or {}).get("spec")) or {}
    return None


def cross_check(resources):
    """What the API server or the controllers would refuse, or get wrong, that no schema sees."""
    by_kind = {}
    for r in resources:
        by_kind.setdefault(r.get("kind"), {})[(r.get("metadata") or {}).get("name")] = r
    config_maps, secrets = by_kind.get("ConfigMap", {}), by_kind.get("Secret", {})
    secret_keys = {n: set(s.get("data") or {}) | set(s.get("stringData") or {}) for n, s in secrets.items()}
    grace_setting = next((int(c["data"]["SHUTDOWN_GRACE_SECS"]) for c in config_maps.values()
                          if "SHUTDOWN_GRACE_SECS" in (c.get("data") or {})), None)

    for r in resources:
        spec = pod_spec(r)
        if spec is None:
            continue
        what = f"{r['kind']}/{r['metadata']['name']}"
        problems = []
        selector = ((r.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        labels = ((r["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        if r["kind"] != "Job" and not selector.items() <= labels.items():
            problems.append("selector does not match the pod template's labels")
        pod_security = spec.get("securityContext") or {}
        containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
        for c in containers:
            security = {**pod_security, **(c.get("securityContext") or {})}
            if security.get("runAsNonRoot") is not True or security.get("runAsUser") == 0:
                problems.append(f"container {c['name']} may run as root")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"container {c['name']} allows privilege escalation")
            for source in c.get("envFrom") or []:
                if "configMapRef" in source and source["configMapRef"]["name"] not in config_maps:
                    problems.append(f"unknown ConfigMap {source['configMapRef']['name']}")
                if "secretRef" in source and source["secretRef"]["name"] not in secrets:
                    problems.append(f"unknown Secret {source['secretRef']['name']}")
            ports = {p.get("name") for p in c.get("ports") or []}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                if isinstance(port, str) and port not in ports:
                    problems.append(f"{probe} uses unknown port {port}")
            if "resources" not in c:
                problems.append(f"container {c['name']} sets no resources")
        if grace_setting is not None and r["kind"] != "Job":
            grace = spec.get("terminationGracePeriodSeconds", 30)
            if grace <= grace_setting:
                problems.append(f"terminationGracePeriodSeconds {grace} is not above "
                                f"SHUTDOWN_GRACE_SECS {grace_setting}")
        check(not problems, f"{what}: selector, security, references, grace period", "; ".join(problems))

    pods = [r for r in resources if pod_spec(r) is not None]
    for name, service in by_kind.get("Service", {}).items():
        selector = (service.get("spec") or {}).get("selector") or {}
        targets = [r for r in pods
                   if selector.items() <= ((r["spec"].get("template") or {}).get("metadata") or {})
                   .get("labels", {}).items()]
        problems = [] if targets else ["its selector matches no pod template"]
        port_names = {p.get("name") for r in targets for c in pod_spec(r).get("containers", [])
                      for p in c.get("ports") or []}
        for port in (service.get("spec") or {}).get("ports") or []:
            if isinstance(port.get("targetPort"), str) and port["targetPort"] not in port_names:
                problems.append(f"targetPort {port['targetPort']} is no container port")
        check(not problems, f"Service/{name}: selects pods, ports exist", "; ".join(problems))

    auths = by_kind.get("TriggerAuthentication", {})
    for name, auth in auths.items():
        problems = [f"Secret {ref['name']} key {ref['key']} does not exist"
                    for ref in (auth.get("spec") or {}).get("secretTargetRef") or []
                    if ref["key"] not in secret_keys.get(ref["name"], set())]
        check(not problems, f"TriggerAuthentication/{name}: secret references exist", "; ".join(problems))
    for name, scaled in by_kind.get("ScaledObject", {}).items():
        spec = scaled.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        problems = []
        if target.get("name") not in by_kind.get(target.get("kind", "Deployment"), {}):
            problems.append(f"scaleTargetRef {target.get('kind', 'Deployment')}/{target.get('name')} "
                            "is not among the manifests")
        for trigger in spec.get("triggers") or []:
            ref = (trigger.get("authenticationRef") or {}).get("name")
            if ref and ref not in auths:
                problems.append(f"trigger {trigger.get('type')}: unknown TriggerAuthentication {ref}")
        if (spec.get("minReplicaCount") or 0) > (spec.get("maxReplicaCount") or 100):
            problems.append("minReplicaCount is above maxReplicaCount")
        check(not problems, f"ScaledObject/{name}: target and authentication exist", "; ".join(problems))


KUSTOMIZATION_SCHEMA = {
    # Our own, small: the fields this project uses (kustomize's own schema is not packaged).
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "resources"],
    "properties": {
        "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
        "kind": {"const": "Kustomization"},
        "namespace": {"type": "string"},
        "resources": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {k: {"type": "string"} for k in ("name", "newName", "newTag", "digest")},
            },
        },
        "labels": {"type": "array"},
    },
}


def validate_kustomization(file, kustomization):
    errors = list(jsonschema.Draft202012Validator(KUSTOMIZATION_SCHEMA).iter_errors(kustomization))
    if not check(not errors, f"{file}: kustomization fields",
                 "; ".join(f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                           for e in errors)):
        return
    listed = set(kustomization["resources"])
    present = {p.name for p in manifest_files(file.parent)} - {file.name}
    missing = sorted(r for r in listed if not (file.parent / r).exists())
    unlisted = sorted(present - listed)
    check(not missing and not unlisted, f"{file}: lists every manifest beside it, and only those",
          "; ".join(f"{label}: {', '.join(names)}" for label, names in
                    (("missing", missing), ("not listed", unlisted)) if names))


# ---------------------------------------------------------------- main


def main(argv):
    paths = [Path(a) for a in argv] or [Path("Dockerfile"), Path("docker-compose.yml"),
                                         Path("deploy/kubernetes")]
    manifests = []
    for path in paths:
        if not path.exists():
            fail(f"{path}: no such file or directory")
        elif path.is_file() and path.name.startswith("Dockerfile"):
            validate_dockerfile(path)
        elif path.is_file() and "compose" in path.name:
            validate_compose(path)
        else:
            manifests.append(path)
    if manifests:
        validate_kubernetes(manifests)
    print(f"validate: {passes} checks ok, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
