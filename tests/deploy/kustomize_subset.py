"""The part of kustomize that deploy/k8s uses, so the manifests are checked on any machine.

Supported: `resources` (files and directories), `components`, `labels` (pairs, includeTemplates),
`configMapGenerator` (files; options: labels), and `patches` given as a path to one
strategic-merge document that only adds fields or replaces scalars and maps. Anything else raises
`Unsupported`, so a new kustomize feature in deploy/k8s fails the tests until it is supported
here. Generated ConfigMaps keep their plain names (kustomize appends a content hash; references
follow it either way).
A patch may instead name a `target` (kind and name; no match is no change) with an inline
strategic-merge document or JSON patch of `add` operations; strategic merges also merge lists of
named items (containers, env) by name.
Where kubectl is installed, the tests render with kubectl itself (the authority) and
test_kubectl_render.py checks this renderer, the fallback, against it.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]

KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "labels",
    "patches",
    "configMapGenerator",
}
# Where `includeTemplates` puts labels, by kind, as kustomize does.
TEMPLATE_LABEL_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Deployment": (("spec", "template", "metadata", "labels"),),
    "Job": (("spec", "template", "metadata", "labels"),),
    "CronJob": (
        ("spec", "jobTemplate", "metadata", "labels"),
        ("spec", "jobTemplate", "spec", "template", "metadata", "labels"),
    ),
}


class Unsupported(Exception):
    """deploy/k8s uses a kustomize feature this subset does not implement."""


def key(manifest: Manifest) -> tuple[str, str]:
    return manifest["kind"], manifest["metadata"]["name"]


def load_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def build(directory: Path) -> list[Manifest]:
    """Render the kustomization in `directory`, like `kustomize build`."""
    return _build(directory, expected_kind="Kustomization", accumulated=[])


def build_combination(resources: Iterable[Path], components: Iterable[Path]) -> list[Manifest]:
    """Render what a kustomization listing these resources and components would."""
    accumulated: list[Manifest] = []
    for resource in resources:
        _add(accumulated, build(resource))
    for component in components:
        accumulated = _build(component, expected_kind="Component", accumulated=accumulated)
    return accumulated


def _build(directory: Path, *, expected_kind: str, accumulated: list[Manifest]) -> list[Manifest]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KUSTOMIZATION_KEYS
    if unknown:
        raise Unsupported(f"{directory}: kustomization fields {sorted(unknown)}")
    if kustomization.get("kind", "Kustomization") != expected_kind:
        raise Unsupported(f"{directory}: expected a {expected_kind}")
    manifests = copy.deepcopy(accumulated)
    for entry in kustomization.get("resources", []):
        path = directory / entry
        _add(manifests, build(path) if path.is_dir() else load_documents(path))
    for entry in kustomization.get("components", []):
        manifests = _build(directory / entry, expected_kind="Component", accumulated=manifests)
    for generator in kustomization.get("configMapGenerator", []):
        _add(manifests, [_config_map(directory, generator)])
    for patch in kustomization.get("patches", []):
        _apply_patch(directory, patch, manifests)
    for label_set in kustomization.get("labels", []):
        _apply_labels(label_set, manifests)
    return manifests


def _add(manifests: list[Manifest], new: list[Manifest]) -> None:
    present = {key(manifest) for manifest in manifests}
    for manifest in new:
        if key(manifest) in present:
            raise ValueError(f"{key(manifest)} is defined twice")
        present.add(key(manifest))
        manifests.append(manifest)


def _config_map(directory: Path, generator: dict[str, Any]) -> Manifest:
    if set(generator) - {"options"} != {"name", "files"}:
        raise Unsupported(f"configMapGenerator fields {sorted(generator)}")
    options = generator.get("options", {})
    if set(options) - {"labels"}:
        raise Unsupported(f"configMapGenerator options {sorted(options)}")
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for entry in generator["files"]:
        if "=" in entry:
            raise Unsupported(f"configMapGenerator key=path entry {entry!r}")
        content = (directory / entry).read_bytes()
        name = Path(entry).name
        try:
            data[name] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[name] = base64.b64encode(content).decode("ascii")
    config_map: Manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"]},
    }
    if "labels" in options:
        config_map["metadata"]["labels"] = dict(options["labels"])
    if data:
        config_map["data"] = data
    if binary:
        config_map["binaryData"] = binary
    return config_map


def _apply_patch(directory: Path, patch: dict[str, Any], manifests: list[Manifest]) -> None:
    if set(patch) == {"target", "patch"}:
        _apply_targeted_patch(patch["target"], yaml.safe_load(patch["patch"]), manifests)
        return
    if set(patch) != {"path"}:
        raise Unsupported(f"patch fields {sorted(patch)}: `path`, or `target` with `patch`")
    (document,) = load_documents(directory / patch["path"])
    targets = [manifest for manifest in manifests if key(manifest) == key(document)]
    if not targets:
        raise ValueError(f"{directory / patch['path']}: no {key(document)} to patch")
    _merge(targets[0], document, path=key(document)[1])


def _apply_targeted_patch(
    target: dict[str, Any], patch: dict[str, Any] | list[dict[str, Any]], manifests: list[Manifest]
) -> None:
    if set(target) != {"kind", "name"}:
        raise Unsupported(f"patch target fields {sorted(target)}: only kind and name")
    for manifest in manifests:
        if key(manifest) != (target["kind"], target["name"]):
            continue
        if isinstance(patch, list):
            for operation in patch:
                _json_patch_add(manifest, operation)
        else:
            _merge(manifest, patch, path=target["name"])


def _json_patch_add(manifest: Manifest, operation: dict[str, Any]) -> None:
    if operation.get("op") != "add":
        raise Unsupported(f"JSON patch operation {operation.get('op')!r}: only add")
    *parents, last = [
        part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]
    ]
    node: Any = manifest
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    value = copy.deepcopy(operation["value"])
    if not isinstance(node, list):
        node[last] = value
    elif last == "-":
        node.append(value)
    else:
        node.insert(int(last), value)


def _merge(target: dict[str, Any], patch: dict[str, Any], *, path: str) -> None:
    for name, value in patch.items():
        here = f"{path}.{name}"
        if isinstance(value, dict) and isinstance(target.get(name), dict):
            _merge(target[name], value, path=here)
        elif _named_items(value) and _named_items(target.get(name)):
            _merge_by_name(target[name], value, path=here)
        elif isinstance(value, list) and target.get(name):
            # Strategic merge would merge these lists by key: not implemented here.
            raise Unsupported(f"patch merges into the existing list {here}")
        else:
            target[name] = copy.deepcopy(value)


def _named_items(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value)


def _merge_by_name(target: list[dict[str, Any]], patch: list[dict[str, Any]], *, path: str) -> None:
    """Strategic merge of lists whose merge key is `name` (containers, env, volumes); new items
    go first, as kustomize puts them."""
    by_name = {item["name"]: item for item in target}
    for item in patch:
        if item["name"] in by_name:
            _merge(by_name[item["name"]], item, path=f"{path}[{item['name']}]")
    target[:0] = [copy.deepcopy(item) for item in patch if item["name"] not in by_name]


def _apply_labels(label_set: dict[str, Any], manifests: list[Manifest]) -> None:
    if set(label_set) - {"pairs", "includeTemplates"}:
        raise Unsupported(f"labels fields {sorted(label_set)}")
    for manifest in manifests:
        paths: tuple[tuple[str, ...], ...] = (("metadata", "labels"),)
        if label_set.get("includeTemplates"):
            paths += TEMPLATE_LABEL_PATHS.get(manifest["kind"], ())
        for path in paths:
            node = manifest
            for part in path:
                node = node.setdefault(part, {})
            node.update(label_set["pairs"])
