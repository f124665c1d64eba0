"""The layout's promises, checked on the source: which module may talk to Postgres or AWS, the
runtime never reaching into the development package, no import cycles, a runtime-only layer."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = Path("layers/shared/bat_backfill")
TOOLS = Path("tools/bat_backfill_tools")
FUNCTIONS = Path("functions")

# Statements, not words: a docstring may say "select" or "update", SQL says SELECT ... FROM.
SQL = re.compile(
    r"\b(SELECT\s[\s\S]*\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
    r"CREATE\s+(TABLE|INDEX|FUNCTION|TRIGGER|DATABASE)|ALTER\s+TABLE|DROP\s+(TABLE|DATABASE)|"
    r"TRUNCATE\s+\w|START\s+TRANSACTION|COMMIT\b|ROLLBACK\b)"
)

# Who may do what, by path relative to the repository root.
MAY_ISSUE_SQL = (
    f"{RUNTIME}/db/",
    # The local Postgres stand-in creates the databases of its own throwaway cluster.
    f"{TOOLS}/localpg.py",
)
MAY_IMPORT_PG8000 = (f"{RUNTIME}/db/",)
MAY_IMPORT_BOTO3 = (
    f"{RUNTIME}/aws.py",
    # Composition roots build clients and hand them on.
    f"{RUNTIME}/services.py",
    f"{TOOLS}/cli.py",
    # The in-process AWS emulation.
    f"{TOOLS}/localaws.py",
)
AWS_MODULES = ("boto3", "botocore", "aws_lambda_powertools.utilities.parameters")
NEVER_IN_RUNTIME = ("bat_backfill_tools", "moto", "pytest", "hypothesis")


def python_files(root: Path) -> Iterator[tuple[str, ast.Module]]:
    for folder in (RUNTIME, TOOLS, FUNCTIONS):
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            yield relative, ast.parse(path.read_text("utf-8"), filename=relative)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of import nodes inside `if TYPE_CHECKING:` blocks (types only, never executed)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def module_name(relative: str) -> str:
    path = relative.removesuffix(".py").removesuffix("/__init__")
    for prefix in ("layers/shared/", "tools/"):
        path = path.removeprefix(prefix)
    return path.replace("/", ".")


def imports(relative: str, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every executed import, relative ones resolved."""
    skipped = _type_checking_only(tree)
    package = module_name(relative)
    if not relative.endswith("__init__.py"):
        package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _strings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(
                str(v.value) if isinstance(v, ast.Constant) else " x " for v in node.values
            )
            yield node.lineno, text


def _allowed(relative: str, places: tuple[str, ...]) -> bool:
    return relative.startswith(places)


def _is(module: str, names: tuple[str, ...]) -> bool:
    return any(module == n or module.startswith(n + ".") for n in names)


def find_violations(root: Path) -> list[str]:
    """Every place where a module does what the layout reserves for another."""
    found: list[str] = []
    for relative, tree in python_files(root):
        for line, text in _strings(tree):
            if SQL.search(text) and not _allowed(relative, MAY_ISSUE_SQL):
                found.append(f"{relative}:{line}: SQL outside db/: {text.strip()[:60]!r}")
        for line, module in imports(relative, tree):
            if _is(module, ("pg8000",)) and not _allowed(relative, MAY_IMPORT_PG8000):
                found.append(f"{relative}:{line}: imports {module} outside db/")
            if _is(module, AWS_MODULES) and not _allowed(relative, MAY_IMPORT_BOTO3):
                found.append(f"{relative}:{line}: imports {module} outside aws.py")
            if relative.startswith(f"{RUNTIME}/") and _is(module, NEVER_IN_RUNTIME):
                found.append(f"{relative}:{line}: the runtime imports {module}")
    return sorted(set(found))


def test_every_module_keeps_to_its_part() -> None:
    assert find_violations(ROOT) == []


def test_the_check_finds_each_kind_of_planted_violation(tmp_path: Path) -> None:
    for folder in (RUNTIME, TOOLS, FUNCTIONS):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    planted = tmp_path / RUNTIME / "orchestrate.py"
    planted.write_text(
        planted.read_text()
        + "\n\ndef _planted(conn):\n"
        + '    conn.run("UPDATE vehicles SET vin = NULL WHERE id = 1")\n'
        + "    import boto3\n"
        + "    import pg8000.native\n"
        + "    from bat_backfill_tools import demo\n"
    )
    app = tmp_path / FUNCTIONS / "orchestrator" / "app.py"
    app.write_text(app.read_text() + '\nQUERY = f"SELECT id FROM vehicles WHERE {1}"\n')
    found = "\n".join(find_violations(tmp_path))
    assert f"{RUNTIME}/orchestrate.py" in found
    for what in (
        "SQL outside db/: 'UPDATE vehicles",
        "imports boto3 outside aws.py",
        "imports pg8000.native outside db/",
        "the runtime imports bat_backfill_tools",
        "functions/orchestrator/app.py",
    ):
        assert what in found, what


# ------------------------------------------------------------------ import cycles


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project's modules it imports (at run time, not for types)."""
    trees = dict(python_files(root))
    modules = {module_name(r) for r in trees}
    graph: dict[str, set[str]] = {}
    for relative, tree in trees.items():
        name = module_name(relative)
        graph[name] = {m for _, m in imports(relative, tree) if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    graph = import_graph(ROOT)
    assert graph.get("bat_backfill.process")  # the graph is not empty
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# ------------------------------------------------------------------ the layer


DEVELOPMENT_MODULES = ("cli", "demo", "localpg", "localaws", "pageserver", "samplepages")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_layer_holds_the_runtime_package_only(tmp_path: Path) -> None:
    # The layer build's first step (no network): what `sam build` copies into the layer.
    subprocess.run(
        [
            "make",
            "-s",
            "-f",
            "layers/shared/Makefile",
            "layer-package",
            f"ARTIFACTS_DIR={tmp_path}",
        ],
        cwd=ROOT,
        check=True,
    )
    shipped = sorted(
        p.relative_to(tmp_path / "python").as_posix() for p in tmp_path.rglob("*") if p.is_file()
    )
    source = sorted(
        f"bat_backfill/{p.relative_to(ROOT / RUNTIME).as_posix()}"
        for p in (ROOT / RUNTIME).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    assert shipped == source
    names = {Path(p).stem for p in shipped}
    assert not names & set(DEVELOPMENT_MODULES)
    assert not any(p.startswith("bat_backfill_tools") for p in shipped)


def _distribution(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_layer_requirements_name_what_the_runtime_imports() -> None:
    """A library the runtime imports ships in the layer: pinned, or required by a pinned one."""
    lines = (ROOT / "layers/shared/requirements.txt").read_text().splitlines()
    requirements = (line.split("#", 1)[0].strip() for line in lines)
    pinned = {_distribution(re.split(r"[=<>~!\[;\s]", line)[0]) for line in requirements if line}
    provided = set(pinned)
    for name in pinned:
        for requirement in importlib.metadata.requires(name) or []:
            if "extra ==" not in requirement:
                provided.add(_distribution(re.split(r"[=<>~!\[;\s(]", requirement)[0]))
    owners = importlib.metadata.packages_distributions()
    missing = set()
    for relative, tree in python_files(ROOT):
        if not relative.startswith(f"{RUNTIME}/"):
            continue
        for _line, module in imports(relative, tree):
            top = module.split(".")[0]
            if not top or top == "bat_backfill" or top in sys.stdlib_module_names:
                continue
            if not {_distribution(d) for d in owners.get(top, [top])} & provided:
                missing.add(top)
    assert missing == set(), "imported by the runtime but not in layers/shared/requirements.txt"
