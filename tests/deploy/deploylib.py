"""Shared helpers for the deploy/ and Dockerfile checks (run with Debian's /usr/bin/python3).

Missing modules stop the run with a non-zero exit and the Debian package to install: these
checks must never pass by skipping.
"""

import copy
import glob
import os
import re
import shlex
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")


def _require(module, package):
    try:
        return __import__(module)
    except ImportError:
        sys.stderr.write(
            f"FATAL: Python module '{module}' is missing for {sys.executable}.\n"
            f"Install the Debian package: apt-get install {package}\n"
            f"(these tests run with /usr/bin/python3, not a pyenv or venv interpreter)\n")
        sys.exit(1)


yaml = _require("yaml", "python3-yaml")
jsonschema = _require("jsonschema", "python3-jsonschema")


def load_docs(path):
    """Every non-empty YAML document of `path`, in order."""
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def manifest_files():
    """deploy/NN-*.yaml in apply order."""
    return sorted(glob.glob(os.path.join(DEPLOY, "*.yaml")))


def optional_files():
    """deploy/optional/*.yaml: objects applied by hand, only where their comment says."""
    return sorted(glob.glob(os.path.join(DEPLOY, "optional", "*.yaml")))


def example_files():
    return sorted(glob.glob(os.path.join(DEPLOY, "example", "*.yaml")))


def all_objects(paths):
    """(path, object) for every document of `paths`."""
    return [(p, doc) for p in paths for doc in load_docs(p)]


def find(objects, kind, name=None):
    """The one object of `kind` (and `name`); fails loudly when there is not exactly one."""
    hits = [o for _, o in objects
            if o.get("kind") == kind and (name is None or o["metadata"].get("name") == name)]
    if len(hits) != 1:
        raise AssertionError(f"expected exactly one {kind} {name or ''}, found {len(hits)}")
    return hits[0]


def crds():
    """kind -> CustomResourceDefinition from deploy/00-crds.yaml."""
    return {d["spec"]["names"]["kind"]: d
            for d in load_docs(os.path.join(DEPLOY, "00-crds.yaml"))
            if d.get("kind") == "CustomResourceDefinition"}


# --- CRD openAPIV3Schema -> JSON Schema ------------------------------------------------------

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1

# What the API server checks in every object's metadata (ObjectMeta), as far as these tests
# need it: a name, and string-valued labels and annotations.
_OBJECT_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def to_json_schema(node, strict=True, _root=True, _object_meta=False):
    """Converts a structural openAPIV3Schema into a JSON Schema (draft 7).

    - x-kubernetes-* keys are dropped after being read;
    - `nullable: true` becomes a type that also admits null;
    - `format: int32` becomes a range (the API server rejects out-of-range values);
    - strict: fields the API server would prune are rejected instead, as
      `kubectl apply --validate=strict` (the default) reports them as unknown: an object
      rejects undeclared properties unless it is marked x-kubernetes-preserve-unknown-fields
      or is ObjectMeta (`metadata` of the root or of an embedded resource);
    - the root's `metadata` is checked as ObjectMeta.
    """
    out = {}
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(node.get("x-kubernetes-embedded-resource"))
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub, strict, False,
                                             name == "metadata" and (_root or embedded))
                        for name, sub in value.items()}
            if _root and "metadata" in out[key]:
                out[key]["metadata"] = copy.deepcopy(_OBJECT_META)
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_json_schema(value, strict, False)
        else:
            out[key] = copy.deepcopy(value)
    if node.get("format") == "int32":
        out["minimum"], out["maximum"] = INT32_MIN, INT32_MAX
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (strict and node.get("type") == "object" and "additionalProperties" not in node
            and not preserve and not _object_meta):
        out["additionalProperties"] = False
    return out


def validator_for(crd, strict=True):
    (version,) = crd["spec"]["versions"]
    schema = to_json_schema(version["schema"]["openAPIV3Schema"], strict)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def structural_errors(node, path="", root=True):
    """Violations of the API server's structural-schema rules that apply to these CRDs."""
    errors = []
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if "type" not in node and not preserve and not node.get("x-kubernetes-int-or-string"):
        errors.append(f"{path or '<root>'}: no type")
    if "properties" in node and "additionalProperties" in node:
        errors.append(f"{path}: both properties and additionalProperties")
    if node.get("x-kubernetes-embedded-resource") and node.get("type") != "object":
        errors.append(f"{path}: embedded resource not an object")
    if node.get("nullable") and "type" not in node:
        errors.append(f"{path}: nullable without type")
    for banned in ("$ref", "definitions", "dependencies", "id", "patternProperties"):
        if banned in node:
            errors.append(f"{path}: {banned} is not allowed in a CRD schema")
    if root:
        if node.get("type") != "object":
            errors.append("<root>: type must be object")
        meta = node.get("properties", {}).get("metadata")
        if meta is not None and set(meta) - {"type", "description"}:
            errors.append("metadata: only type may be given at the root")
    for name, sub in node.get("properties", {}).items():
        errors += structural_errors(sub, f"{path}.{name}", False)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            errors += structural_errors(node[key], f"{path}[{key}]", False)
    return errors


def schema_at(crd, dotted):
    """The schema node at `spec.clientPassword.name` style paths (`[]` steps into items)."""
    (version,) = crd["spec"]["versions"]
    node = version["schema"]["openAPIV3Schema"]
    for part in dotted.split("."):
        if part == "[]":
            node = node["items"]
        elif part == "{}":
            node = node["additionalProperties"]
        else:
            node = node["properties"][part]
    return node


# --- nmid's flags ---------------------------------------------------------------------------

def nmid_flag_names():
    """Every flag name in the flag table's parts, daemon/config/flag_table_*.cpp
    (`.name = "..."`)."""
    names = set()
    directory = os.path.join(ROOT, "daemon", "config")
    for part in sorted(os.listdir(directory)):
        if part.startswith("flag_table_") and part.endswith(".cpp"):
            with open(os.path.join(directory, part), encoding="utf-8") as f:
                names |= set(re.findall(r'Flag\{\s*\.name\s*=\s*"([^"]+)"', f.read()))
    if len(names) < 20:
        raise AssertionError(f"read only {len(names)} flag names from {directory}: format changed?")
    return names


# --- Dockerfile -----------------------------------------------------------------------------

class Instruction:
    def __init__(self, keyword, args, line):
        self.keyword, self.args, self.line = keyword, args, line

    def __repr__(self):
        return f"line {self.line}: {self.keyword} {self.args}"


def parse_dockerfile(path):
    """Instructions grouped by stage: [{"from": Instruction, "name": str|None, "body": [...]}].

    Handles comments, blank lines and backslash continuations (no heredocs, no escape
    directive), which is all this repository's Dockerfile uses."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    instructions, buf, start = [], "", 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped by Docker
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        keyword, _, args = buf.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        buf = ""
    if buf:
        raise AssertionError(f"{path}: instruction at line {start} never ends")
    stages = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append({"from": ins, "image": words[0], "name": name, "body": []})
        elif stages:
            stages[-1]["body"].append(ins)
        elif ins.keyword not in ("ARG",):
            raise AssertionError(f"{path}: {ins} before the first FROM")
    return stages


def copy_sources(ins):
    """(flags, sources, destination) of a COPY instruction, shell or JSON form."""
    args = ins.args
    if args.startswith("["):
        import json
        words = json.loads(args)
    else:
        words = shlex.split(args)
    flags = [w for w in words if w.startswith("--")]
    rest = [w for w in words if not w.startswith("--")]
    if len(rest) < 2:
        raise AssertionError(f"{ins}: COPY needs a source and a destination")
    return flags, rest[:-1], rest[-1]


def dockerignore_patterns():
    path = os.path.join(ROOT, ".dockerignore")
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]
