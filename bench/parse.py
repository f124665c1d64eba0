"""Time full listing extraction against a plain bs4 html.parser parse of the same pages.

Extraction is parse_listing plus parse_comments of one page; html_parser_share is the part of
it spent building the page's tree (lxml), twice, as the two calls each parse the page.

Usage: .venv/bin/python bench/parse.py [PAGE.html ...]
Without arguments it measures ../shared/fixtures/bat/pages/*.html when that folder exists,
else pages rendered by bat_backfill.samplepages. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bat_backfill_tools.samplepages import render_page, sample_spec
from bs4 import BeautifulSoup
from bs4.filter import SoupStrainer
from lxml import html as lxml_html

from bat_backfill.parsing import ListingParseError, parse_comments, parse_listing
from bat_backfill.parsing.page import parse_document

ROOT = Path(__file__).resolve().parents[1]
SHARED_PAGES = ROOT.parent / "shared" / "fixtures" / "bat" / "pages"


def _interleaved_medians(
    works: dict[str, Callable[[], object]], rounds: int, sparse: set[str], sparse_runs: int
) -> dict[str, float]:
    """Median ms of each work, timed in turns: one run of each per round, so load that comes and
    goes on the machine falls on all of them alike. The `sparse` (slow) works run in only
    `sparse_runs` rounds, spread evenly over the run."""
    every = max(1, rounds // max(1, sparse_runs))
    times: dict[str, list[float]] = {name: [] for name in works}
    for work in works.values():
        work()  # warm caches (regex compilation, imports) outside the timed runs
    for round_ in range(rounds):
        for name, work in works.items():
            if name in sparse and (round_ % every or len(times[name]) >= sparse_runs):
                continue
            gc.collect()
            started = time.perf_counter()
            work()
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(runs) for name, runs in times.items()}


def _pages(paths: list[str]) -> list[tuple[str, str]]:
    if paths:
        return [(Path(p).name, Path(p).read_text(encoding="utf-8")) for p in paths]
    if SHARED_PAGES.is_dir():
        found = sorted(SHARED_PAGES.glob("*.html"))
        if found:
            return [(p.name, p.read_text(encoding="utf-8")) for p in found]
    return [(f"sample-{i}.html", render_page(sample_spec(i))) for i in range(8)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="saved listing pages (default: see module doc)")
    parser.add_argument("--repeats", type=int, default=21, help="timed runs of the parser")
    parser.add_argument("--bs4-repeats", type=int, default=5, help="timed runs of bs4")
    args = parser.parse_args(argv)

    details = []
    for name, page in _pages(args.pages):

        def extract(page: str = page) -> object:
            return parse_listing(page), parse_comments(page)

        try:
            extract()
        except ListingParseError as exc:
            print(f"{name:60s} refused: {exc}", flush=True)
            continue

        def baseline_parse(page: str = page) -> object:
            return BeautifulSoup(page, "html.parser")

        # The HTML parser's part: parse_listing and parse_comments each build the page's tree
        # once (they run in different functions, so neither can reuse the other's).
        def html_parse(page: str = page) -> object:
            return parse_document(page)

        # What a whole-tree parse costs, for choosing the HTML parser: lxml's own tree, and
        # BeautifulSoup on lxml keeping only the two blocks most facts sit in.
        def lxml_tree(page: str = page) -> object:
            return lxml_html.document_fromstring(page.encode("utf-8"))

        strainer = SoupStrainer(class_=["essentials", "listing-available-info"])

        def bs4_strained(page: str = page, strainer: SoupStrainer = strainer) -> object:
            return BeautifulSoup(page, "lxml", parse_only=strainer)

        medians = _interleaved_medians(
            {
                "extract": extract,
                "html_parse": html_parse,
                "lxml_tree": lxml_tree,
                "baseline": baseline_parse,
                "bs4_strained": bs4_strained,
            },
            args.repeats,
            sparse={"baseline", "bs4_strained"},
            sparse_runs=args.bs4_repeats,
        )
        ours, baseline = medians["extract"], medians["baseline"]
        ratio = ours / baseline if baseline else float("inf")
        parser_ms = 2 * medians["html_parse"]
        tree_ms, strained_ms = medians["lxml_tree"], medians["bs4_strained"]
        details.append(
            {
                "page": name,
                "kb": round(len(page.encode("utf-8")) / 1024),
                "ms": round(ours, 2),
                "bs4_ms": round(baseline, 1),
                "ratio": round(ratio, 3),
                "html_parser_share": round(parser_ms / ours, 3) if ours else 0.0,
                "lxml_tree_ms": round(tree_ms, 2),
                "bs4_lxml_strained_ms": round(strained_ms, 1),
            }
        )
        print(
            f"{name:60s} {details[-1]['kb']:5d} KB  extract {ours:7.2f} ms  "
            f"(html parser {details[-1]['html_parser_share']:.0%})  "
            f"bs4 html.parser {baseline:8.1f} ms  ratio {ratio:.3f}  "
            f"lxml tree {tree_ms:5.2f} ms  bs4+lxml strained {strained_ms:6.1f} ms",
            flush=True,
        )
    if not details:
        print(json.dumps({"pages": 0, "median_ms": None, "ratio_to_bs4_html_parser": None}))
        return 1
    ms = [float(d["ms"]) for d in details]  # type: ignore[arg-type]
    ratios = [float(d["ratio"]) for d in details]  # type: ignore[arg-type]
    summary = {
        "pages": len(details),
        "median_ms": round(statistics.median(ms), 2),
        "ratio_to_bs4_html_parser": round(statistics.median(ratios), 3),
        "worst_ms": max(ms),
        "worst_ratio": max(ratios),
        "html_parser_share": round(
            statistics.median(float(d["html_parser_share"]) for d in details),  # type: ignore[arg-type]
            3,
        ),
        "lxml_tree_median_ms": round(
            statistics.median(float(d["lxml_tree_ms"]) for d in details),  # type: ignore[arg-type]
            2,
        ),
        "bs4_lxml_strained_median_ms": round(
            statistics.median(float(d["bs4_lxml_strained_ms"]) for d in details),  # type: ignore[arg-type]
            1,
        ),
        # Other work on the machine moves the figures, even timed in turns (ratios from 0.15 to
        # 0.28 at loads of 2-3 on two cores, 0.20 at rest): say what the load was.
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "details": details,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
