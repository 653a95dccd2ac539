"""Write ``docs/config.md``, the config reference, from the pydantic schema of :class:`nqs.config.Config`.

    python docs/gen_config_reference.py      # or any `mkdocs build` / `mkdocs serve` (this file is a hook)

The page is generated from ``Config.model_json_schema()`` and nothing else: every top-level key
whose schema is a model becomes a section ``[name]``, nested models become subsections
``[name.sub]``, and a union of models discriminated on a key (``kind``) gets one table per
variant.  Each table lists key, type (with its bounds), default and the field's description; a
section's text is its class docstring.  Defaults made by a ``default_factory`` are not in the
JSON schema, so they are read from the pydantic classes, matched to the schema by title.
"""

from __future__ import annotations

import re
import sys
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "config.md"

HEADER = """\
# Config reference

A run is described by one TOML file (`nqs run CONFIG`).  Every section below maps onto the
Python API; unknown keys and impossible values are errors that name the key.  `nqs run` writes
the resolved config, every default filled in, to the run folder's `config.toml`.

*This page is generated from the pydantic schema (`nqs.config.Config`) by
`docs/gen_config_reference.py` on every `mkdocs build`; edit the schema, not this page.*
"""


# ----------------------------------------------------------------------------------- schema helpers
def _resolve(node: dict, defs: dict) -> dict:
    """The schema a ``$ref`` points to (the node itself otherwise)."""
    ref = node.get("$ref")
    if ref is None:
        return node
    return defs[ref.rsplit("/", 1)[-1]]


def _ref_name(node: dict) -> str | None:
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _options(node: dict) -> list[dict]:
    """The alternatives of a union node (anyOf / oneOf), or the node alone."""
    for key in ("oneOf", "anyOf"):
        if key in node:
            return list(node[key])
    return [node]


def _is_model(node: dict, defs: dict) -> bool:
    return _resolve(node, defs).get("type") == "object" and "properties" in _resolve(node, defs)


def _model_variants(node: dict, defs: dict) -> list[str] | None:
    """Names of the models a field holds (one for a plain or optional section, several for a union).

    ``None`` when the field is not (an optional) model or union of models.
    """
    opts = [o for o in _options(node) if o.get("type") != "null"]
    if opts and all(_ref_name(o) and _is_model(o, defs) for o in opts):
        return [_ref_name(o) for o in opts]
    return None


def _discriminator(node: dict, variants: list[str], defs: dict) -> str | None:
    """The key that tells the variants of a union apart (pydantic's ``discriminator``, else a const key)."""
    for holder in [node, *_options(node)]:
        disc = holder.get("discriminator")
        if isinstance(disc, dict) and "propertyName" in disc:
            return disc["propertyName"]
    if len(variants) < 2:
        return None
    common = set.intersection(*(set(defs[v]["properties"]) for v in variants))
    for key in sorted(common):
        if all(_const(defs[v]["properties"][key]) is not None for v in variants):
            return key
    return None


def _const(node: dict) -> Any:
    if "const" in node:
        return node["const"]
    if len(node.get("enum", ())) == 1:
        return node["enum"][0]
    return None


def _bounds(node: dict) -> str:
    parts = []
    for key, sym in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in node:
            parts.append(f"{sym} {node[key]}")
    for key, sym in (("minItems", "≥"), ("maxItems", "≤")):
        if key in node:
            parts.append(f"{sym} {node[key]} items")
    return ", ".join(parts)


def _type(node: dict, defs: dict) -> str:
    """A short type label: ``int > 0``, ``"a" | "b"``, ``list[int]``, ``float | unset``."""
    if "$ref" in node:
        target = _resolve(node, defs)
        return f"table ({target.get('title', _ref_name(node))})" if _is_model(node, defs) else _type(target, defs)
    if "enum" in node:
        return " | ".join(_literal(v) for v in node["enum"])
    if "const" in node:
        return _literal(node["const"])
    if "anyOf" in node or "oneOf" in node:
        opts = _options(node)
        labels = [_type(o, defs) for o in opts if o.get("type") != "null"]
        if any(o.get("type") == "null" for o in opts):
            labels.append("unset")
        return " | ".join(dict.fromkeys(labels))
    kind = node.get("type")
    if isinstance(kind, list):
        return " | ".join(_type({**node, "type": k}, defs) for k in kind)
    names = {"integer": "int", "number": "float", "boolean": "bool", "string": "str", "null": "unset"}
    if kind == "array":
        items = node.get("items")
        if isinstance(node.get("prefixItems"), list):
            label = "[" + ", ".join(_type(i, defs) for i in node["prefixItems"]) + "]"
        else:
            label = f"list[{_type(items, defs)}]" if items else "list"
    elif kind == "object":
        extra = node.get("additionalProperties")
        label = f"table of {_type(extra, defs)}" if isinstance(extra, dict) and extra else "table"
    else:
        label = names.get(kind, "any")
    bounds = _bounds(node)
    return f"{label} {bounds}" if bounds else label


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "unset"
    return str(value)


def _value(value: Any) -> str:
    """A default in TOML spelling."""
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + "}"
    return _literal(value)


def _text(doc: str | None) -> str:
    """Docstring text as Markdown: RST double backticks to single, paragraphs kept."""
    if not doc:
        return ""
    return re.sub(r"``(.+?)``", r"`\1`", doc.strip())


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# ----------------------------------------------------------------------------------- defaults
def _model_classes(root: type) -> dict[str, type]:
    """Every pydantic model reachable from ``root``'s annotations, keyed by its schema title."""
    from pydantic import BaseModel

    found: dict[str, type] = {}

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            title = tp.model_config.get("title") or tp.__name__
            if title in found:
                return
            found[title] = tp
            for field in tp.model_fields.values():
                visit(field.annotation)
            return
        for arg in typing.get_args(tp):
            visit(arg)

    visit(root)
    return found


def _class_defaults(cls: type) -> dict[str, Any]:
    """Defaults of ``cls``'s fields by alias, default factories called (JSON values)."""
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    out = {}
    for name, field in cls.model_fields.items():
        key = field.alias or name
        if field.default is not PydanticUndefined:
            value = field.default
        elif field.default_factory is not None:
            try:
                value = field.default_factory()
            except TypeError:  # a factory that takes the validated data
                continue
        else:
            continue
        if isinstance(value, BaseModel):
            continue  # a nested section: documented as its own table
        out[key] = value
    return out


# ----------------------------------------------------------------------------------- rendering
class _Writer:
    def __init__(self, schema: dict, defaults: dict[str, dict[str, Any]]):
        self.defs = schema.get("$defs", {})
        self.defaults = defaults
        self.lines: list[str] = []

    def table(self, model: dict, title: str, skip: set[str] = frozenset()) -> list[tuple[str, dict, list[str]]]:
        """The key table of one model; returns its nested sections (key, schema, variant names, array of tables)."""
        props = model.get("properties", {})
        required = set(model.get("required", ()))
        defaults = self.defaults.get(title, {})
        rows, nested = [], []
        for key, node in props.items():
            if key in skip:
                continue
            variants = _model_variants(node, self.defs)
            if variants is not None:
                nested.append((key, node, variants, False))
                continue
            items = [o.get("items") for o in _options(node) if o.get("type") == "array" and o.get("items")]
            if len(items) == 1 and _model_variants(items[0], self.defs) is not None:  # an array of tables
                nested.append((key, items[0], _model_variants(items[0], self.defs), True))
                continue
            if "default" in node:
                default = _value(node["default"])
            elif key in defaults:
                default = _value(defaults[key])
            elif key in required:
                default = "required"
            else:
                default = ""
            desc = node.get("description") or _resolve(node, self.defs).get("description", "")
            rows.append(f"| `{key}` | {_cell(_type(node, self.defs))} | {_cell(default)} | {_cell(_text(desc))} |")
        if rows:
            self.lines += ["| key | type | default | description |", "|---|---|---|---|", *rows, ""]
        return nested

    def section(
        self, path: str, node: dict, variants: list[str], level: int, seen: tuple[str, ...], array: bool = False
    ) -> None:
        hashes = "#" * min(level, 6)
        head = f"[[{path}]]" if array else f"[{path}]"
        optional = any(o.get("type") == "null" for o in _options(node))
        field_desc = _text(node.get("description"))
        if len(variants) == 1:
            name = variants[0]
            model = self.defs[name]
            self.lines += [f"{hashes} `{head}`", ""]
            for text in (field_desc, _text(model.get("description"))):
                if text:
                    self.lines += [text, ""]
            if array:
                self.lines += ["An array of tables: repeat the table once per entry.", ""]
            elif optional:
                self.lines += ["Optional: leave the table out to go without it.", ""]
            self._body(path, model, name, level, seen)
            return
        disc = _discriminator(node, variants, self.defs)
        kinds = []
        for name in variants:
            const = _const(self.defs[name]["properties"].get(disc, {})) if disc else None
            kinds.append((name, const))
        self.lines += [f"{hashes} `{head}`", ""]
        if field_desc:
            self.lines += [field_desc, ""]
        if disc:
            listed = ", ".join(f"`{_literal(c)}`" for _, c in kinds if c is not None)
            self.lines += [f"One of several forms, chosen by `{disc}`: {listed}.", ""]
        else:
            self.lines += ["One of several forms: " + ", ".join(f"`{n}`" for n in variants) + ".", ""]
        if array:
            self.lines += ["An array of tables: repeat the table once per entry, each with its own form.", ""]
        elif optional:
            self.lines += ["Optional: leave the table out to go without it.", ""]
        sub = "#" * min(level + 1, 6)
        for name, const in kinds:
            model = self.defs[name]
            label = f"{disc} = {_literal(const)}" if disc and const is not None else model.get("title", name)
            self.lines += [f"{sub} `{head}` {label}", ""]
            if model.get("description"):
                self.lines += [_text(model["description"]), ""]
            self._body(path, model, name, level + 1, seen, skip={disc} if disc and const is not None else set())

    def _body(self, path, model, name, level, seen, skip=frozenset()):
        if name in seen:  # a recursive schema: name it, do not expand it again
            self.lines += [f"(the same keys as `{name}` above)", ""]
            return
        nested = self.table(model, model.get("title", name), set(skip))
        for key, node, variants, array in nested:
            self.section(f"{path}.{key}", node, variants, level + 1, (*seen, name), array)


def render(schema: dict, defaults: dict[str, dict[str, Any]] | None = None) -> str:
    """The Markdown page for a pydantic JSON schema whose top level is an object of sections."""
    w = _Writer(schema, defaults or {})
    w.lines += [HEADER]
    title = schema.get("title", "Config")
    top_rows_start = len(w.lines)
    w.lines += ["## Top-level keys", ""]
    nested = w.table(schema, title)
    if len(w.lines) == top_rows_start + 2:  # no scalar keys at the top
        del w.lines[top_rows_start:]
    sections = [key for key, *_ in nested]
    if sections:
        w.lines += ["Sections: " + ", ".join(f"[`[{k}]`](#{k})" for k in sections) + ".", ""]
    for key, node, variants, array in nested:
        w.section(key, node, variants, 2, (title,), array)
    return "\n".join(w.lines).rstrip() + "\n"


def generate(output: Path = OUTPUT) -> bool:
    """Write the reference to ``output``; returns whether the file changed."""
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)  # this checkout's nqs, not an installed one
    from nqs.config import schema_model

    config = schema_model()  # the registry-backed sections as unions of their registered kinds
    defaults = {title: _class_defaults(cls) for title, cls in _model_classes(config).items()}
    text = render(config.model_json_schema(), defaults)
    if output.exists() and output.read_text() == text:
        return False
    output.write_text(text)
    return True


def on_pre_build(config: Any) -> None:
    """mkdocs hook: regenerate the page before every build (unchanged pages are not rewritten)."""
    generate()


if __name__ == "__main__":
    print(f"{OUTPUT}: {'written' if generate() else 'unchanged'}")
