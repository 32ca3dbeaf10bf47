"""No import cycle inside cnnscope/ (issue 14): every import counts, also those inside functions (they
only hide a cycle until the function runs); imports under ``if TYPE_CHECKING:`` are annotations and
never run."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "cnnscope"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _runtime_imports(tree: ast.AST):
    """Import nodes outside ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # `from pkg import mod` reads the module mod; `from mod import name` reads mod
                names = [f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target for a in node.names]
            else:
                names = [a.name for a in node.names]
            for name in names:
                while name and name not in mods and "." in name:
                    name = name.rpartition(".")[0]
                if name in mods and name != mod:
                    edges[mod].add(name)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(root):
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop(); on.discard(w); comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))

    for m in sorted(edges):
        if m not in index:
            visit(m)
    return out


def test_the_walker_sees_a_cycle_hidden_in_a_function():
    """The checker itself: two modules importing each other, one of them inside a function."""
    edges = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert _cycles(edges) == [["a", "b"]]


def test_no_import_cycles():
    mods = _modules()
    edges = _edges(mods)
    assert sum(len(e) for e in edges.values()) > 100          # it did read the imports
    assert _cycles(edges) == []


#: the layers, lowest first: a module may import its own package and any package listed before it
#: (DEVELOPING.md, "Architecture"). ``report`` renders plain dicts, so it sits low: everything may
#: render, and it imports nothing but ``units``.
LAYERS = ["signals", "errors", "units", "ops", "progress", "fileio", "limits", "report", "graph", "loading", "data", "analysis",
          "transforms", "export", "timing", "check", "cnnscope", "models_catalog", "commands", "cli", "__main__"]


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 else "cnnscope"


def test_imports_follow_the_layers():
    mods = _modules()
    assert {_layer(m) for m in mods} <= set(LAYERS), {_layer(m) for m in mods} - set(LAYERS)
    upward = sorted(f"{m} -> {t}" for m, targets in _edges(mods).items() for t in targets
                    if _layer(m) != _layer(t) and LAYERS.index(_layer(t)) > LAYERS.index(_layer(m)))
    assert upward == []
