"""Cold start of each Lambda handler: importing functions/<name>/app.py in a fresh interpreter.

For every handler, in fresh subprocesses (as Lambda does on a cold start, with `app` imported
from the function's folder):
  - `python -X importtime`: the cumulative import time of `app` and its heaviest imports,
    also summed per top-level package (which libraries are on the start-up path);
  - the wall time of `import app` measured inside the process, and of the whole process
    (interpreter start + import), median of 5;
  - the same without usable .pyc files (a layer shipped without compiled bytecode, in a
    read-only file system, compiles every module on every cold start).

    .venv/bin/python bench/coldstart.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _common import ROOT, emit, parser, say, verdict

TARGET_MS = 300.0
FUNCTIONS = ROOT / "functions"

# Runs in the child: import the handler module the way Lambda does and report the time.
DRIVER = """
import sys, time
sys.path.insert(0, {folder!r})
start = time.perf_counter()
import app
took = time.perf_counter() - start
assert callable(app.handler)
print("IMPORT_MS", took * 1000)
"""


def run_child(
    folder: Path, *, importtime: bool, pycache: str, write_pyc: bool
) -> tuple[float, float, str]:
    """(in-process import ms, whole process ms, stderr) of one fresh interpreter.

    Bytecode is read from (and, with `write_pyc`, written to) `pycache` only, never next to
    the sources: other people work in this tree.
    """
    env = dict(os.environ, AWS_DEFAULT_REGION="us-east-1", PYTHONPYCACHEPREFIX=pycache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not write_pyc:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    argv = [sys.executable, *(["-X", "importtime"] if importtime else [])]
    start = time.perf_counter()
    done = subprocess.run(
        [*argv, "-c", DRIVER.format(folder=str(folder))],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    whole = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"importing {folder}/app.py failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("IMPORT_MS"))
    return float(line.split()[1]), whole, done.stderr


def parse_importtime(stderr: str) -> list[tuple[int, int, int, str]]:
    """(depth, self_us, cumulative_us, module) for every line of -X importtime output."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = line[len("import time:") :].split("|", 2)
        name = name.rstrip()
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((depth, int(self_us), int(cumulative), name.strip()))
    return rows


def app_breakdown(rows: list[tuple[int, int, int, str]]) -> dict[str, Any]:
    """The import of `app`: its total, its 10 heaviest imports, self time per top package."""
    # importtime logs a module when its import finishes, children first: the lines of app's
    # import are those from after the previous depth-0 line up to app's own line.
    end = max(i for i, r in enumerate(rows) if r[3] == "app" and r[0] == 0)
    begin = max((i for i in range(end) if rows[i][0] == 0), default=-1) + 1
    inside = rows[begin:end]
    total_us = rows[end][2]
    heaviest = sorted(inside, key=lambda r: r[2], reverse=True)[:10]
    per_package: dict[str, int] = defaultdict(int)
    for _depth, self_us, _cum, name in inside:
        per_package[name.split(".")[0]] += self_us
    per_package["app"] = rows[end][1]
    packages = sorted(per_package.items(), key=lambda kv: kv[1], reverse=True)
    return {
        "importtime_total_ms": round(total_us / 1000, 1),
        "heaviest": [
            {"module": name, "depth": depth, "cumulative_ms": round(cum / 1000, 1)}
            for depth, _s, cum, name in heaviest
        ],
        "self_ms_by_package": {k: round(v / 1000, 1) for k, v in packages[:12]},
        "modules_imported": len(inside) + 1,
    }


def measure(folder: Path, runs: int, *, with_pyc: bool) -> dict[str, Any]:
    imports, wholes, breakdowns = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        # warm the file cache (and write the .pyc)
        run_child(folder, importtime=False, pycache=pycache, write_pyc=with_pyc)
        for _ in range(runs):
            import_ms, whole_ms, _err = run_child(
                folder, importtime=False, pycache=pycache, write_pyc=with_pyc
            )
            imports.append(import_ms)
            wholes.append(whole_ms)
            _i, _w, stderr = run_child(folder, importtime=True, pycache=pycache, write_pyc=with_pyc)
            breakdowns.append(app_breakdown(parse_importtime(stderr)))
    breakdowns.sort(key=lambda b: b["importtime_total_ms"])
    return {
        "import_ms_median": round(statistics.median(imports), 1),
        "import_ms_runs": [round(v, 1) for v in imports],
        "process_ms_median": round(statistics.median(wholes), 1),
        **breakdowns[len(breakdowns) // 2],  # the run with the median importtime total
    }


def main() -> None:
    args = parser(__doc__.split("\n", 1)[0], database=False).parse_args()
    runs = 2 if args.quick else 5
    handlers = sorted(p.parent for p in FUNCTIONS.glob("*/app.py"))
    figures: dict[str, Any] = {"benchmark": "coldstart", "quick": args.quick, "runs": runs,
                               "target_ms": TARGET_MS, "python": sys.version.split()[0],
                               "handlers": {}}  # fmt: skip
    for folder in handlers:
        name = folder.name
        say(f"{name}: {runs} fresh interpreters (+{runs} with -X importtime)")
        warm = measure(folder, runs, with_pyc=True)
        cold = measure(folder, max(1, runs // 2), with_pyc=False)
        figures["handlers"][name] = {"with_pyc": warm, "without_pyc": cold}
        say(
            f"  import app: median {warm['import_ms_median']} ms in-process "
            f"(importtime total {warm['importtime_total_ms']} ms, {warm['modules_imported']} "
            f"modules; whole process {warm['process_ms_median']} ms) - "
            f"{verdict(warm['import_ms_median'], TARGET_MS)} ({TARGET_MS:g} ms)"
        )
        say(
            f"  without .pyc: import {cold['import_ms_median']} ms, whole process "
            f"{cold['process_ms_median']} ms"
        )
        say("  heaviest imports (cumulative ms, nesting depth under app):")
        for item in warm["heaviest"]:
            print(
                f"      {item['cumulative_ms']:8.1f}  {'  ' * (item['depth'] - 1)}{item['module']}"
            )
        packages = ", ".join(f"{k} {v}" for k, v in warm["self_ms_by_package"].items())
        say(f"  self time by top-level package (ms): {packages}")
    emit(figures)


if __name__ == "__main__":
    main()
