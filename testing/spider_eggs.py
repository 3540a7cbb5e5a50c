"""The test Scrapy project (testing/spider_project/) built into an egg, as scrapyd-deploy does
(`scrapyd-deploy --build-egg`: `python setup.py clean -a bdist_egg -d DIR` in the project)."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent / "spider_project"
SPIDERS = ["broken", "catalog", "chatty", "escape", "failing", "hog", "members", "sleeper", "snoop"]


def build_egg(project: Path = PROJECT, version: str = "1.0") -> bytes:
    """The egg of `project` (built in a scratch copy: the source tree stays clean)."""
    with tempfile.TemporaryDirectory(prefix="egg-") as scratch:
        work = Path(scratch) / "project"
        shutil.copytree(project, work, ignore=shutil.ignore_patterns("build", "*.egg-info"))
        setup = work / "setup.py"
        setup.write_text(setup.read_text().replace('version="1.0"', f'version="{version}"'))
        out = Path(scratch) / "dist"
        subprocess.run(
            [sys.executable, "setup.py", "clean", "-a", "bdist_egg", "-d", str(out)],
            cwd=work,
            check=True,
            capture_output=True,
        )
        (egg,) = out.glob("*.egg")
        return egg.read_bytes()


@functools.lru_cache(maxsize=4)
def demo_egg(version: str = "1.0") -> bytes:
    """The test project's egg, built once per process."""
    return build_egg(version=version)
