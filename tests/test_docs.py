"""The documentation site builds without warnings, and its config reference covers the schema."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from nqs.config import Config

ROOT = Path(__file__).resolve().parent.parent


def _sections() -> list[str]:
    """The top-level keys of Config that hold a table (a model, an optional model or a union of models)."""
    schema = Config.model_json_schema()
    out = []
    for key, node in schema["properties"].items():
        options = node.get("oneOf") or node.get("anyOf") or [node]
        options = [o.get("items", o) if o.get("type") == "array" else o for o in options]
        if any("$ref" in o or "oneOf" in o or "anyOf" in o for o in options if o.get("type") != "null"):
            out.append(key)
    return out


def test_mkdocs_build_strict(tmp_path):
    """`mkdocs build --strict` passes: every nav page exists, every link and anchor resolves."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "config" / "index.html").exists()


def test_config_reference_lists_every_section(tmp_path):
    """The generated reference has a heading for each top-level section of Config and names every top-level key."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_config_reference
    finally:
        sys.path.remove(str(ROOT / "docs"))
    out = tmp_path / "config.md"
    gen_config_reference.generate(out)
    text = out.read_text()
    sections = _sections()
    assert {"lattice", "hamiltonian", "model", "sampler", "optimizer"} <= set(sections)
    for key in sections:
        assert re.search(rf"^## `\[\[?{re.escape(key)}\]\]?`", text, re.M), f"no section [{key}] in config.md"
    for key in Config.model_fields:
        assert f"`{key}`" in text or f"[{key}]" in text, f"top-level key {key!r} missing from config.md"
