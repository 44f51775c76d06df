"""The import graph of the four parts (theory, toy_models, verification, figures) has no cycle.

Every ``import`` and ``from ... import`` in their modules counts, lazy ones inside functions included (a lazy
import hides a cycle from the interpreter, not from the design). An edge goes to the module imported, or to the
submodule when ``from package import name`` names one. An import of a package that contains the importing
module (its own ``__init__``, which is being initialized) is not an edge. Private names do not cross modules:
``from x import _name`` of another module, and a private module ``_x`` imported from outside its package, are
listed as well.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("theory", "toy_models", "verification", "figures")


def _modules() -> dict[str, Path]:
    out = {}
    for part in PARTS:
        for path in (ROOT / part).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("srflow",) + (rel[:-1] if rel[-1] == "__init__" else rel))
            out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for each import in the file at ``path`` (module ``name``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            names = [a.name for a in node.names]
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            found += [(s, []) for s in subs]
            rest = [n for n in names if f"{target}.{n}" not in modules]
            if rest or not subs:
                found.append((target, rest))
    return found


def _graph():
    modules = _modules()
    edges, private = {m: set() for m in modules}, []
    for name, path in modules.items():
        for target, names in _imports(name, path, modules):
            if target not in modules or target == name or name.startswith(target + "."):
                continue
            edges[name].add(target)
            owner, _, leaf = target.rpartition(".")
            if leaf.startswith("_") and not leaf.startswith("__") and not (name == owner or name.startswith(owner + ".")):
                private.append(f"{name} imports the private module {target}")
            private += [f"{name} imports {target}.{n}" for n in names if n.startswith("_") and not n.startswith("__")]
    return edges, private


def _cycles(edges: dict) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_lazy_imports_and_a_planted_cycle():
    """The parser finds an import inside a function, and a cycle through it (a check that can fail)."""
    edges = {"a": {"b"}, "b": {"c"}, "c": set()}
    assert _cycles(edges) == []
    edges["c"].add("a")
    assert _cycles(edges) == [["a", "b", "c"]]
    edges, _ = _graph()
    assert "srflow.verification.compiled" in edges["srflow.verification.simulate"]  # lazy, inside simulate()


def test_no_import_cycle_between_modules():
    """No module of the four parts reaches itself through imports (lazy ones included)."""
    edges, _ = _graph()
    cycles = _cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(" ⇄ ".join(c) for c in cycles)


def test_no_private_name_crosses_modules():
    """No private name (``_name``) is imported from another module, no private module from another package."""
    _, private = _graph()
    assert not private, "\n".join(private)


def test_the_two_theory_backends_give_the_same_functions():
    """``theory.backend`` picks ``theory.dense`` or ``theory.matrix_free``: both define every backend function with
    the same parameters, so a caller never branches on the backend."""
    import inspect

    from srflow.theory import backend, dense, matrix_free

    for name in backend.BACKEND_FUNCTIONS:
        params = [list(inspect.signature(getattr(mod, name)).parameters) for mod in (dense, matrix_free)]
        assert params[0] == params[1], (name, params)
