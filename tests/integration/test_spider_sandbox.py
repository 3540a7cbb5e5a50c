"""The egg store (GridFS on the MongoDB wire server) and the sandbox that lists an egg's spiders."""

from __future__ import annotations

import io
import zipfile

import pytest

from shared.eggs import EggError, EggStore, sorted_versions
from shared.spider_sandbox import SandboxError, environment, list_spiders
from testing.spider_eggs import SPIDERS, demo_egg

pytestmark = pytest.mark.integration


def test_versions_are_kept_per_owner_and_project_in_scrapyds_order(db):
    store = EggStore(db, max_bytes=10_000)
    store.ensure_indexes()
    for version in ("1.10", "1.2", "1.9"):
        store.add("alice", "demo", version, f"egg {version}".encode())
    store.add("alice", "other", "r1", b"other egg")
    store.add("bob", "demo", "9.0", b"bob's egg")
    assert store.versions("alice", "demo") == ["1.2", "1.9", "1.10"]
    latest = store.get("alice", "demo")
    assert latest is not None and (latest.version, latest.data) == ("1.10", b"egg 1.10")
    assert store.get("alice", "demo", "1.2").data == b"egg 1.2"  # type: ignore[union-attr]
    assert store.projects("alice") == ["demo", "other"]
    assert store.projects("bob") == ["demo"] and store.get("bob", "other") is None
    assert store.get("carol", "demo") is None

    # the same version again replaces it
    store.add("alice", "demo", "1.9", b"egg 1.9 again")
    assert store.get("alice", "demo", "1.9").data == b"egg 1.9 again"  # type: ignore[union-attr]
    assert store.versions("alice", "demo") == ["1.2", "1.9", "1.10"]
    sizes = len(b"egg 1.2") + len(b"egg 1.9 again") + len(b"egg 1.10") + len(b"other egg")
    assert store.bytes_for_owner("alice") == sizes

    assert store.delete_version("alice", "demo", "1.10") is True
    assert store.delete_version("alice", "demo", "1.10") is False
    assert store.get("alice", "demo").version == "1.9"  # type: ignore[union-attr]
    assert store.delete_project("alice", "demo") == 2
    assert store.projects("alice") == ["other"]
    assert store.get("bob", "demo").data == b"bob's egg"  # type: ignore[union-attr]

    with pytest.raises(EggError, match="SPIDER_MAX_EGG_MB"):
        store.add("alice", "big", "1", b"x" * 10_001)
    with pytest.raises(EggError, match="project must be"):
        store.add("alice", "../etc", "1", b"egg")
    with pytest.raises(EggError, match="version must be"):
        store.add("alice", "demo", "", b"egg")


def test_versions_that_are_not_pep440_sort_as_text():
    assert sorted_versions(["r10", "r9", "abc"]) == ["abc", "r10", "r9"]
    assert sorted_versions(["10", "9", "1.0a1"]) == ["1.0a1", "9", "10"]


def test_an_eggs_spiders_are_listed_in_a_sandbox_without_the_services_environment(
    settings, monkeypatch
):
    monkeypatch.setenv("MONGO_URL", "mongodb://secret-host/")
    monkeypatch.setenv("JWT_SECRET_KEY", "a-secret-the-child-must-not-see")
    env = environment("/tmp/x", [])
    assert not {"MONGO_URL", "JWT_SECRET_KEY", "REDIS_URL"} & set(env)
    assert env["HOME"] == "/tmp/x"

    assert list_spiders(demo_egg(), timeout=30, settings=settings) == SPIDERS

    with pytest.raises(SandboxError, match="not a Scrapy project egg"):
        list_spiders(b"not a zip", timeout=30, settings=settings)
    # an egg whose settings module fails to import: the child's traceback comes back
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as egg:
        egg.writestr("EGG-INFO/entry_points.txt", "[scrapy]\nsettings = broken.settings\n")
        egg.writestr("broken/__init__.py", "")
        egg.writestr("broken/settings.py", "raise ValueError('settings exploded')\n")
    with pytest.raises(SandboxError, match="settings exploded"):
        list_spiders(broken.getvalue(), timeout=30, settings=settings)
    # one that never ends its import: stopped at the timeout
    slow = io.BytesIO()
    with zipfile.ZipFile(slow, "w") as egg:
        egg.writestr("EGG-INFO/entry_points.txt", "[scrapy]\nsettings = slow.settings\n")
        egg.writestr("slow/__init__.py", "")
        egg.writestr("slow/settings.py", "while True:\n    pass\n")
    with pytest.raises(SandboxError, match="longer than 2 s"):
        list_spiders(slow.getvalue(), timeout=2, settings=settings)
