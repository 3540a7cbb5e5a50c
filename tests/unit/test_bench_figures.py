"""The benchmark figures: bench/figures/*.json are the one source of docs/benchmarks.md and of
the README's benchmark table, and every figure with a bare-tool counterpart carries its ratio."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import report
from bench.__main__ import ALL, SUBCOMMANDS, module, parser
from bench.figures import FIGURES, KEYS, dumps

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmarks_page_is_what_the_figures_say():
    expected = report.page(report.documents())
    assert (ROOT / "docs" / "benchmarks.md").read_text() == expected, (
        "docs/benchmarks.md differs from bench/figures/*.json: "
        "run `.venv/bin/python -m bench report`"
    )


def test_the_readme_table_is_what_the_figures_say():
    readme = (ROOT / "README.md").read_text()
    assert report.BEGIN in readme and report.END in readme
    expected = report.with_block(readme, report.readme_block(report.documents()))
    assert readme == expected, (
        "the README's benchmark table differs from bench/figures/*.json: "
        "run `.venv/bin/python -m bench report`"
    )


@pytest.mark.parametrize("path", sorted(FIGURES.glob("*.json")), ids=lambda p: p.stem)
def test_a_figures_document_names_its_run_and_its_ratios_name_its_figures(path):
    doc = json.loads(path.read_text())
    assert [k for k in KEYS if k not in doc] == []
    assert doc["name"] == path.stem and doc["name"] in SUBCOMMANDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", doc["measured_at"])
    assert doc["command"].startswith(".venv/bin/python ")
    assert doc["machine"]["cpus"]
    labels = module(doc["name"]).LABELS
    for key, ratio in doc["ratios"].items():
        value, _, bare = key.partition(" / ")
        assert bare, f"{key}: a ratio is named 'A / B'"
        assert value in labels and bare in labels, f"{key}: no label to show it with"
        if value in doc["figures"] and bare in doc["figures"]:
            assert ratio == pytest.approx(doc["figures"][value] / doc["figures"][bare], abs=0.01)
    if doc.get("seeded_from") == "docs":
        assert doc["reproduce"].startswith(f".venv/bin/python -m bench {doc['name']}")
    assert path.read_text() == dumps(doc), "written by bench.figures.dumps"


def test_every_subcommand_has_its_options_and_its_description():
    top = parser()
    for name in SUBCOMMANDS:
        mod = module(name)
        assert callable(mod.run) and mod.TITLE and mod.ABOUT and isinstance(mod.LABELS, dict)
        args = top.parse_args([name, "--save"])
        assert args.subcommand == name and args.save
    assert set(ALL) <= set(SUBCOMMANDS)
    assert top.parse_args(["all"]).subcommand == "all"


def test_a_new_run_shows_its_figures_beside_the_bare_tools_with_the_ratio(tmp_path):
    doc = {
        "name": "scrapy",
        "measured_at": "2026-12-08T10:00:00+00:00",
        "command": ".venv/bin/python -m bench scrapy --save",
        "machine": {"cpus": 2, "memory_gib": 23.5, "python": "3.11.7", "load": "load 0.3"},
        "figures": {"pages": 1000, "service_pages_per_s": 250.0, "bare_scrapy_pages_per_s": 265.0},
        "ratios": {"service_pages_per_s / bare_scrapy_pages_per_s": 0.943},
    }
    (tmp_path / "scrapy.json").write_text(dumps(doc))
    docs = report.documents(tmp_path)
    page = report.page(docs)
    assert "| static crawl through the service, pages/s (median) | 250.0 | bare Scrapy" in page
    assert "265.0 | **0.94×** |" in page
    assert "Measured 2026-12-08 with `.venv/bin/python -m bench scrapy --save`." in page
    assert "Not measured yet:" in page
    assert "| static crawl, 1,000 pages, through API" in report.readme_block(docs)


def test_bench_takes_its_test_support_from_testing_never_from_tests():
    for path in (ROOT / "bench").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import) tests\b", text, re.M), path.name
        assert "sys.path.insert" not in text, path.name
