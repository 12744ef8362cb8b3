"""Fails when the project's modules import each other in a cycle (Python package and Rust crate).

Python: every ``import dupcore.x`` / ``from dupcore[.x] import y`` in ``python/dupcore``, lazy
(function-level) imports included, between the package's modules.
Rust: every ``super::``/``crate::`` path in ``src`` outside ``#[cfg(test)]`` modules, between
files; a parent's ``mod``/``pub use`` of its own children is structure, not a dependency, so
edges from a ``mod.rs``/``lib.rs`` to its children are left out.

    python scripts/check-cycles.py      # prints the cycles, exits 1 if there is one
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_graph() -> dict[str, set[str]]:
    """Module name (dotted, below ``dupcore``) -> dupcore modules it imports."""
    pkg = ROOT / "python" / "dupcore"
    paths = {}
    for p in pkg.rglob("*.py"):
        rel = p.relative_to(pkg).with_suffix("").parts
        name = ".".join(rel[:-1] if rel[-1] == "__init__" else rel) or "__init__"
        paths[name] = p
    graph: dict[str, set[str]] = {m: set() for m in paths}

    def module_of(dotted: str) -> str | None:
        """The longest dupcore module that ``dupcore.<dotted>`` names."""
        parts = dotted.split(".")
        while parts:
            if ".".join(parts) in paths:
                return ".".join(parts)
            parts.pop()
        return None

    for name, p in paths.items():
        tree = ast.parse(p.read_text(), str(p))
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                if not t.startswith("dupcore."):
                    continue
                found = module_of(t[len("dupcore."):])
                if found and found != name and found != "__init__":
                    graph[name].add(found)
    return graph


def _strip_tests(text: str) -> str:
    """The source without its ``#[cfg(test)] mod ... { ... }`` blocks."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub(\(crate\))?\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def rust_graph() -> dict[str, set[str]]:
    """Module path (``pgp::writer``) -> modules of the crate it refers to."""
    src = ROOT / "src"
    files: dict[str, Path] = {}
    for p in src.rglob("*.rs"):
        rel = p.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("mod", "lib"):
            parts = parts[:-1]
        files["::".join(parts)] = p
    graph: dict[str, set[str]] = {m: set() for m in files}

    def resolve(base: list[str], path: list[str]) -> str | None:
        """The longest module prefix of ``base + path``."""
        full = base + path
        for n in range(len(full), -1, -1):
            name = "::".join(full[:n])
            if name in files:
                return name
        return None

    for mod, p in files.items():
        own = mod.split("::") if mod else []
        is_parent = p.name in ("mod.rs", "lib.rs")
        text = _strip_tests(p.read_text())
        text = re.sub(r"//[^\n]*", "", text)
        for m in re.finditer(r"\b(crate|super(?:::super)*)((?:::\w+)+|::\{[^}]*\})", text):
            head, tail = m.group(1), m.group(2)
            # `super` is the parent of this module, whether it is a file or a mod.rs
            base = [] if head == "crate" else own[:len(own) - head.count("super")]
            paths = []
            if tail.startswith("::{"):
                for item in tail[3:-1].split(","):
                    item = item.strip().split(" as ")[0]
                    if item and item != "self":
                        paths.append(item.split("::"))
                    elif item == "self":
                        paths.append([])
            else:
                paths.append(tail[2:].split("::"))
            for path in paths:
                target = resolve(base, path)
                if target is None or target == mod:
                    continue
                if is_parent and target.startswith(f"{mod}::" if mod else ""):
                    continue  # a parent declaring or re-exporting its children
                graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    bad = 0
    for lang, graph in (("python", python_graph()), ("rust", rust_graph())):
        found = cycles(graph)
        for comp in found:
            print(f"{lang} import cycle: {' <-> '.join(comp)}")
        bad += len(found)
        edges = sum(len(v) for v in graph.values())
        print(f"{lang}: {len(graph)} modules, {edges} dependencies, {len(found)} cycles")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
