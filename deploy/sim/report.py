"""The harness's tables (Markdown, so they go into docs/operations/scaling.md as printed)."""

from __future__ import annotations

from typing import Any


def _spread(jobs_by_host: dict[str, int]) -> str:
    return ", ".join(f"{host} {n}" for host, n in jobs_by_host.items())


def _once(result: dict[str, Any]) -> str:
    if result["exactly_once"]:
        return "yes"
    return (
        f"NO: {result['completed']}/{result['jobs']} completed, {result['duplicates']} duplicated, "
        f"{result['missing']} missing, {result['final_lines_not_one']} with ≠1 final line"
    )


def _cores(result: dict[str, Any], host: str) -> str:
    return f"{result['cores_by_host'].get(host, 0.0):.2f}"


def scale_table(phases: list[dict[str, Any]]) -> str:
    workers = max(p["workers"] for p in phases)
    head = ["worker hosts", "jobs/s", "pages/s", "items/s", "jobs per host"]
    head += ["CPU data: redis / mongo", "api", "ops"]
    head += [f"worker-{k}" for k in range(1, workers + 1)]
    head += ["site", "client", "all hosts", "core-s per job", "machine busy", "every job once"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in phases:
        programs = p["cores_by_program"]
        data = f"{programs.get('data/redis', 0.0):.2f} / {programs.get('data/python', 0.0):.2f}"
        cells = [
            str(p["workers"]),
            f"{p['jobs_per_second']:.2f}",
            f"{p['pages_per_second']:.1f}",
            f"{p['items_per_second']:.0f}",
            _spread(p["jobs_by_host"]),
            data,
            _cores(p, "api"),
            _cores(p, "ops"),
        ]
        cells += [
            _cores(p, f"worker-{k}") if k <= p["workers"] else "–" for k in range(1, workers + 1)
        ]
        cells += [_cores(p, "site"), _cores(p, "client"), f"{p['cores_ours']:.2f}"]
        cells += [f"{p['cores_ours'] / max(1e-9, p['jobs_per_second']):.2f}"]
        cells += [f"{p['cores_machine']:.2f}", _once(p)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def fault_table(loss: dict[str, Any] | None, redis: dict[str, Any] | None) -> str:
    head = ["fault", "while", "jobs", "every job once", "recovery"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if loss:
        while_ = f"{loss['orphaned_jobs']} of its jobs running"
        recovery = (
            f"orphaned jobs running again after {loss['orphans_running_again_after_s']} s, "
            f"completed after {loss['orphans_completed_after_s']} s; "
            f"all jobs done {loss['all_completed_after_s']} s after the loss"
        )
        rows.append(
            f"| {loss['victim']} lost (cable cut, {loss['processes_killed']} processes killed) "
            f"| {while_} | {loss['jobs']} ({_spread(loss['jobs_by_host'])}) | {_once(loss)} "
            f"| {recovery} |"
        )
    if redis:
        while_ = f"{redis['running_at_restart']} running, {redis['pending_at_restart']} waiting"
        recovery = (
            f"{redis['messages_lost']} queued messages lost with it; those jobs re-sent and "
            f"running again after {redis['lost_message_jobs_running_again_after_s']} s; "
            f"all jobs done {redis['all_completed_after_s']} s after the restart"
        )
        rows.append(
            f"| data host's Redis killed and restarted empty | {while_} | {redis['jobs']} "
            f"| {_once(redis)} | {recovery} |"
        )
    return "\n".join(rows)
