"""The package's import graph, read from the source with ``ast``: no cycle, counting imports
inside functions too, and ``compat`` (the patches) stands below the feature code: it imports
none of it when it is imported (a patch may import what it patches in when it is applied)."""
import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

from helpers import ROOT

PACKAGE = "fairseq_bt_plugin"
#: what compat (the patches every import of the plugin applies) must not import
ABOVE_COMPAT = ("cli", "transfer", "experiment", "generate")


def modules() -> Dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its ``__init__.py``)."""
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_time_nodes(tree: ast.AST):
    """The nodes run when the module is imported: all but function bodies."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield node
        yield from import_time_nodes(node)


def imports(name: str, path: Path, known: Set[str], in_functions: bool) -> Set[str]:
    """The package's modules that module ``name`` imports when it is imported (module level,
    ``if`` and ``try`` blocks included), and with ``in_functions`` those its functions import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = set()
    for node in ast.walk(tree) if in_functions else import_time_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # ``from X import Y``: X, and X.Y when Y is a module
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t != name}
    return out


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """A cycle of ``graph`` as its modules, the first repeated at the end; None if none."""
    done: Set[str] = set()
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(graph[node]):
            cycle = visit(nxt)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def import_graph(in_functions: bool) -> Dict[str, Set[str]]:
    found = modules()
    return {name: imports(name, path, set(found), in_functions) for name, path in found.items()}


def test_the_package_has_no_import_cycle():
    graph = import_graph(in_functions=True)
    assert len(graph) > 50 and f"{PACKAGE}.errors" in graph[f"{PACKAGE}.compat"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def above_compat(modules: Set[str]) -> List[str]:
    return sorted(m for m in modules for part in ABOVE_COMPAT
                  if m == f"{PACKAGE}.{part}" or m.startswith(f"{PACKAGE}.{part}."))


def test_compat_stands_below_the_feature_code():
    """None when compat is imported; later, only the freezing hook of ``transfer``, imported
    by the patch that installs it."""
    at_import = above_compat(import_graph(in_functions=False)[f"{PACKAGE}.compat"])
    assert not at_import, f"compat imports {at_import}"
    assert above_compat(import_graph(in_functions=True)[f"{PACKAGE}.compat"]) == [
        f"{PACKAGE}.transfer"]


def test_a_cycle_is_found_and_shown():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
