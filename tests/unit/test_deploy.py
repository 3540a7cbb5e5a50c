"""deploy/ checked by parsing and against the Compose spec's schema (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
APP_SERVICES = {
    "api",
    "worker-scrapy",
    "worker-playwright",
    "worker-spiders",
    "worker-maintenance",
    "worker-webhooks",
    "beat",
    "scheduler",
    "flower",
}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_compose_has_every_process_of_the_architecture():
    services = compose()["services"]
    assert set(services) == APP_SERVICES | {"redis", "mongo"}
    assert services["mongo"]["image"] == "mongo:7"


def test_workers_can_be_scaled_out():
    services = compose()["services"]
    for name in ("worker-scrapy", "worker-playwright", "worker-spiders"):
        service = services[name]
        # a fixed name or a published port would make `--scale name=N` fail
        assert "container_name" not in service and "ports" not in service
        assert service["command"][:5] == ["celery", "-A", "workers", "worker", "-Q"]
        assert service["command"][5] == name.split("-")[1]


def test_app_services_share_one_image_and_production_settings():
    services = compose()["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == "scrapemaster:latest"
        env = service["environment"]
        assert env["ENV"] == "production" and env["MONGO_URL"].startswith("mongodb://mongo")
        assert env["REDIS_URL"].startswith("redis://redis")
        assert env["PRIVATE_TARGETS"].endswith("block}")


def test_secrets_reach_only_the_processes_that_use_them():
    services = compose()["services"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert ("JWT_SECRET_KEY" in env) == (name == "api"), name
        assert ("ADMIN_PASSWORD" in env) == (name == "api"), name
        assert ("FLOWER_BASIC_AUTH" in env) == (name == "flower"), name
    assert all(p.startswith("127.0.0.1:") for p in services["flower"]["ports"])
    flower = next(
        line for line in (DEPLOY / "Procfile").read_text().splitlines() if "flower" in line
    )
    assert "FLOWER_PASSWORD:?" in flower and "FLOWER_HOST:-127.0.0.1" in flower


def test_local_run_gives_workers_no_api_secrets():
    import sys

    sys.path.insert(0, str(DEPLOY))
    from local import env_for

    base = {"JWT_SECRET_KEY": "j", "ADMIN_PASSWORD": "a", "FLOWER_PASSWORD": "f", "PATH": "/bin"}
    assert env_for("worker-scrapy", base, "admin:f") == {"PATH": "/bin"}
    assert env_for("beat", base, "admin:f") == {"PATH": "/bin"}
    assert env_for("api", base, "admin:f")["JWT_SECRET_KEY"] == "j"
    flower = env_for("flower", base, "admin:f")
    assert flower == {"PATH": "/bin", "FLOWER_USER": "admin", "FLOWER_PASSWORD": "f"}


def test_dockerfile_copies_existing_paths_and_never_downloads_browsers():
    text = (DEPLOY / "Dockerfile").read_text()
    root = DEPLOY.parent
    for source in re.findall(r"^COPY (\S+)", text, flags=re.MULTILINE):
        for part in source.split():
            assert (root / part).exists(), part
    assert "chromium" in text and "playwright install" not in text


def test_procfile_lists_the_processes_that_compose_runs():
    import sys

    sys.path.insert(0, str(DEPLOY))
    from local import read_procfile

    procfile = read_procfile(DEPLOY / "Procfile")
    assert set(procfile) == APP_SERVICES
    services = compose()["services"]
    for name, command in procfile.items():
        # the same program and queue in both lists (compose spells options out)
        words = command.replace("env ", "").split()
        program = next(w for w in words if w in ("python", "celery"))
        assert services[name]["command"][0] == program, name
        if "-Q" in words:
            queue = words[words.index("-Q") + 1]
            compose_words = services[name]["command"]
            assert compose_words[compose_words.index("-Q") + 1] == queue, name


def test_the_readme_and_docs_link_only_to_files_in_the_repository():
    root = DEPLOY.parent
    for doc in (root / "README.md", *sorted((root / "docs").rglob("*.md"))):
        for target in re.findall(r"\]\(([^)#]+)\)", doc.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (doc.parent / target).resolve().is_relative_to(root), (doc.name, target)
            assert (doc.parent / target).exists(), (doc.name, target)


def compose_spec_schema() -> dict:
    """The Compose specification's JSON schema, as check-jsonschema ships it."""
    import json
    from importlib.resources import files

    vendor = files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


def test_compose_file_is_valid_against_the_compose_spec():
    import jsonschema

    validator = jsonschema.Draft202012Validator(compose_spec_schema())
    validator.validate(compose())
    broken = compose()
    broken["services"]["api"]["healthchek"] = broken["services"]["api"].pop("healthcheck")
    assert not validator.is_valid(broken)  # a typo is caught, not ignored


def test_worker_healthchecks_are_the_readiness_check_of_their_own_queue():
    services = compose()["services"]
    for name in (
        "worker-scrapy",
        "worker-playwright",
        "worker-spiders",
        "worker-maintenance",
        "worker-webhooks",
    ):
        service = services[name]
        queue = service["command"][service["command"].index("-Q") + 1]
        assert service["command"][service["command"].index("-n") + 1] == f"{queue}@%h"
        test = service["healthcheck"]["test"]
        assert test[:5] == ["CMD", "python", "-m", "workers.ready", queue], name
        assert "--kill-hung" in test, name  # compose restarts only what exits
    assert "/api/v1/health/ready" in " ".join(services["api"]["healthcheck"]["test"])


def test_beat_and_scheduler_are_killed_when_hung_and_restarted():
    services = compose()["services"]
    assert services["worker-scrapy"]["environment"]["LIVENESS_FILE"].startswith("/tmp/")
    for name in ("beat", "scheduler"):
        service = services[name]
        assert service["healthcheck"]["test"] == [
            "CMD",
            "python",
            "-m",
            "shared.liveness",
            "--kill",
        ], name
        assert service["restart"] == "unless-stopped"


def test_workers_stop_grace_leaves_time_to_hand_a_job_back():
    services = compose()["services"]
    grace = services["worker-scrapy"]["environment"]["WORKER_SHUTDOWN_GRACE_SECONDS"]
    default = float(re.fullmatch(r"\$\{WORKER_SHUTDOWN_GRACE_SECONDS:-(\d+)\}", grace).group(1))
    for name in ("worker-scrapy", "worker-playwright"):
        stop = int(services[name]["stop_grace_period"].rstrip("s"))
        assert stop >= default + 30, name


def test_make_run_says_where_the_flower_password_is_never_the_password(tmp_path):
    import sys

    sys.path.insert(0, str(DEPLOY))
    from local import flower_line

    from shared.settings import Settings

    var = tmp_path / "elsewhere"
    generated = Settings.from_env({}, env="local", var_dir=str(var))
    line = flower_line(generated, "admin:s3cr3t-generated")
    assert f"password in {var.resolve()}/flower-password" in line
    assert "s3cr3t" not in line and "var/flower-password" not in line
    chosen = Settings.from_env({}, env="local", flower_password="mine-own-password")
    line = flower_line(chosen, "admin:mine-own-password")
    assert "FLOWER_PASSWORD" in line and "mine-own" not in line


def test_make_run_warns_when_the_api_listens_beyond_loopback():
    import sys

    sys.path.insert(0, str(DEPLOY))
    from local import exposure_note

    from shared.settings import Settings

    assert exposure_note(Settings.from_env({}, env="local")) is None
    note = exposure_note(Settings.from_env({}, env="local", api_host="0.0.0.0"))
    assert note is not None and "PRIVATE_TARGETS=block" in note


def test_the_secrets_key_reaches_the_api_and_the_crawl_workers_only():
    import sys

    sys.path.insert(0, str(DEPLOY))
    from local import env_for

    base = {"SECRETS_KEY": "s" * 20, "PATH": "/bin"}
    for name in ("api", "worker-scrapy", "worker-playwright"):
        assert env_for(name, base, "admin:f")["SECRETS_KEY"] == "s" * 20, name
    for name in ("beat", "scheduler", "worker-webhooks", "worker-maintenance", "flower"):
        assert "SECRETS_KEY" not in env_for(name, base, "admin:f"), name
    services = compose()["services"]
    for name in APP_SERVICES:
        wanted = name in ("api", "worker-scrapy", "worker-playwright")
        assert ("SECRETS_KEY" in services[name]["environment"]) == wanted, name
