"""The three PATCH formats of the Kubernetes API server, on plain JSON objects.

- JSON merge patch (RFC 7386, ``application/merge-patch+json``): maps merge, ``null``
  deletes a key, lists are replaced whole.
- Strategic merge patch (``application/strategic-merge-patch+json``): like a merge
  patch, but the lists Kubernetes declares with a merge key (containers and env by
  ``name``, volumeMounts by ``mountPath``, ports by ``containerPort``) are merged item
  by item; ``{"$patch": "delete"}`` in a list item removes it, ``"$patch": "replace"``
  in a map replaces the map, ``$setElementOrder``/``$retainKeys`` directives are
  accepted and ignored (order is kept as it was, new items are appended).
- JSON patch (RFC 6902, ``application/json-patch+json``): ``add``, ``remove``,
  ``replace``, ``test``, ``move`` and ``copy``; a failed ``test`` is an error.

Every function returns a new object and never changes its arguments.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

# List field name -> merge key, for the lists of the kinds the double serves.
MERGE_KEYS: Dict[str, str] = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "ports": "containerPort",
    "imagePullSecrets": "name", "conditions": "type", "tolerations": "key", "hostAliases": "ip",
}


class PatchError(ValueError):
    """The patch does not apply (the API server answers 422 or 400)."""


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    return _smp_map(target if isinstance(target, dict) else {}, patch)


def _smp_map(target: dict, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if key.startswith("$"):
            continue   # $setElementOrder/..., $retainKeys, $deleteFromPrimitiveList/...: accepted, not needed here
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS:
            result[key] = _smp_list(result.get(key) or [], value, MERGE_KEYS[key])
        elif isinstance(value, dict):
            merged = _smp_map(result.get(key) if isinstance(result.get(key), dict) else {}, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    return result


def _smp_list(target: List[Any], patch: List[Any], key: str) -> List[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {key}")
        index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_smp_map({}, item))
        else:
            result[index] = _smp_map(result[index], item)
    return result


def _pointer(path: str) -> List[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: List[str]) -> Any:
    for part in parts[:-1]:
        if isinstance(doc, list):
            doc = doc[_index(doc, part, False)]
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            raise PatchError(f"doc is missing path: /{'/'.join(parts)}")
    return doc


def _index(doc: list, part: str, adding: bool) -> int:
    if part == "-" and adding:
        return len(doc)
    try:
        index = int(part)
    except ValueError:
        raise PatchError(f"invalid array index {part!r}") from None
    if not 0 <= index <= len(doc) - (0 if adding else 1):
        raise PatchError(f"array index {index} out of bounds")
    return index


def _get(doc: Any, parts: List[str]) -> Any:
    parent = _parent(doc, parts)
    if not parts:
        return doc
    last = parts[-1]
    if isinstance(parent, list):
        return parent[_index(parent, last, False)]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    raise PatchError(f"doc is missing path: /{'/'.join(parts)}")


def _remove(doc: Any, parts: List[str]) -> Any:
    parent, last = _parent(doc, parts), parts[-1]
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, False))
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    raise PatchError(f"doc is missing path: /{'/'.join(parts)}")


def _add(doc: Any, parts: List[str], value: Any) -> Any:
    if not parts:
        return copy.deepcopy(value)
    parent, last = _parent(doc, parts), parts[-1]
    if isinstance(parent, list):
        parent.insert(_index(parent, last, True), copy.deepcopy(value))
    elif isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    else:
        raise PatchError(f"doc is missing path: /{'/'.join(parts)}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation {op!r}")
        parts, kind = _pointer(op["path"]), op["op"]
        if kind == "test":
            if _get(doc, parts) != op.get("value"):
                raise PatchError(f"testing value /{'/'.join(parts)} failed")
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "add":
            doc = _add(doc, parts, op.get("value"))
        elif kind == "replace":
            _get(doc, parts)
            if parts:
                _remove(doc, parts)
            doc = _add(doc, parts, op.get("value"))
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, parts, value)
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}")
    return doc


def apply_patch(content_type: Optional[str], target: Any, patch: Any) -> Any:
    """The patched object; PatchError for a patch that does not apply, LookupError for an unknown format."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == MERGE_PATCH:
        return merge_patch(target, patch)
    if kind == STRATEGIC_MERGE_PATCH:
        return strategic_merge_patch(target, patch)
    if kind == JSON_PATCH:
        return json_patch(target, patch)
    raise LookupError(kind or "(none)")
