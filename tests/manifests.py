"""The Kubernetes manifests of deploy/k8s read offline: rendered as `kubectl kustomize` would
(for the part of kustomize they use) and validated against the Kubernetes schema.

`make test` needs nothing but Python for this; `make test-containers` renders the overlays
with the real kustomize (`kubectl kustomize`) and validates that result the same way.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
KUBERNETES_VERSION = "1.30.0"  # the oldest release the manifests are meant for

# What the offline rendering understands; a kustomization using more fails the tests loudly.
KUSTOMIZE_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images", "replicas",
                    "patches", "generatorOptions", "secretGenerator"}
# Lists that a strategic merge patch merges item by item, by this key (others are replaced).
MERGE_KEYS = {"containers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}
CLUSTER_WIDE = {"Namespace"}

Manifest = dict[str, Any]


def load_documents(path: Path) -> list[Manifest]:
    """Every non-empty YAML document of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(directory: Path) -> list[Manifest]:
    """The objects a kustomization directory stands for, as `kubectl kustomize` makes them."""
    kustomization = load_documents(directory / "kustomization.yaml")[0]
    unknown = set(kustomization) - KUSTOMIZE_FIELDS
    if unknown:
        raise ValueError(f"{directory}: tests/manifests.py cannot render {sorted(unknown)}")
    objects: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        objects += render(path) if path.is_dir() else load_documents(path)
    objects += [generated_secret(spec) for spec in kustomization.get("secretGenerator", [])]
    for patch in kustomization.get("patches", []):
        apply_patch(objects, load_documents(directory / patch["path"])[0], patch.get("target"))
    for obj in objects:
        transform(obj, kustomization)
    return objects


def generated_secret(spec: Manifest) -> Manifest:
    """A secretGenerator entry as its Secret (literals only; names without a hash suffix)."""
    pairs = (literal.split("=", 1) for literal in spec.get("literals", []))
    data = {key: base64.b64encode(value.encode()).decode() for key, value in pairs}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": spec["name"]},
            "type": "Opaque", "data": data}


def apply_patch(objects: list[Manifest], patch: Manifest, target: Manifest | None) -> None:
    """Merge a strategic merge patch into its target: by `target.kind`, else kind and name."""
    matched = False
    for index, obj in enumerate(objects):
        if target is not None:
            hit = obj["kind"] == target["kind"]
        else:
            hit = (obj["kind"], obj["metadata"]["name"]) == (patch["kind"],
                                                             patch["metadata"]["name"])
        if hit:
            body = {key: value for key, value in patch.items()
                    if key not in ("apiVersion", "kind", "metadata")}
            objects[index] = merge(obj, body)
            matched = True
    if not matched:
        raise ValueError(f"patch {patch['metadata']['name']} matches no object")


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """Strategic merge: maps key by key (null deletes), keyed lists item by item."""
    if isinstance(base, dict) and isinstance(patch, dict):
        result = dict(base)
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge(base[key], value, key) if key in base else value
        return result
    key = MERGE_KEYS.get(field)
    if key and isinstance(base, list) and isinstance(patch, list):
        merged = {item[key]: item for item in patch}
        kept = [merge(item, merged.pop(item[key]), "") if item[key] in merged else item
                for item in base]
        return [*merged.values(), *kept]
    return copy.deepcopy(patch)


def transform(obj: Manifest, kustomization: Manifest) -> None:
    """The namespace, image and replica settings of a kustomization, applied to one object."""
    if "namespace" in kustomization and obj["kind"] not in CLUSTER_WIDE:
        obj["metadata"]["namespace"] = kustomization["namespace"]
    counts = {entry["name"]: entry["count"] for entry in kustomization.get("replicas", [])}
    if obj["kind"] == "Deployment" and obj["metadata"]["name"] in counts:
        obj["spec"]["replicas"] = counts[obj["metadata"]["name"]]
    tags = {entry["name"]: entry["newTag"] for entry in kustomization.get("images", [])}
    for container in pod_spec(obj).get("containers", []):
        name = container["image"].split(":")[0]
        if name in tags:
            container["image"] = f"{name}:{tags[name]}"


def pod_spec(obj: Manifest) -> Manifest:
    """The pod spec of a Deployment or Job ({} for other kinds)."""
    if obj["kind"] not in ("Deployment", "Job"):
        return {}
    spec: Manifest = obj["spec"]["template"]["spec"]
    return spec


def invalid_objects(objects: list[Manifest]) -> list[str]:
    """Each object that the Kubernetes schema refuses (unknown fields included), with why."""
    problems = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    return problems


def app_commands(objects: list[Manifest]) -> dict[str, list[str]]:
    """The command of the `app` container of each Deployment and Job, by object name."""
    return {obj["metadata"]["name"]: container["command"]
            for obj in objects for container in pod_spec(obj).get("containers", [])
            if container["name"] == "app"}


def comparable(objects: list[Manifest]) -> dict[tuple[str, str], Any]:
    """Objects by kind and name, in a form where two renderings of the same thing are equal
    (keyed lists in key order, Secret data decoded)."""
    return {(obj["kind"], obj["metadata"]["name"]): _canonical(_decoded(obj)) for obj in objects}


def _decoded(obj: Manifest) -> Manifest:
    if obj["kind"] != "Secret":
        return obj
    data = {key: base64.b64decode(value) for key, value in obj.get("data", {}).items()}
    return {**obj, "data": data}


def _canonical(value: Any, field: str = "") -> Any:
    if isinstance(value, dict):
        return {key: _canonical(item, key) for key, item in sorted(value.items())}
    if isinstance(value, list):
        items = [_canonical(item) for item in value]
        if field in MERGE_KEYS:
            items.sort(key=lambda item: json.dumps(item, sort_keys=True, default=str))
        return items
    return value
