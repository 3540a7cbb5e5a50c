"""`auto`'s decisions in one module (scrapers/auto.py), as both engines and the worker's
routing take them: which queue a claimed job goes to, what a first page decides, and what an
ended run means (hand over, hand back, remember or forget the site). Pure logic."""

from __future__ import annotations

from scrapers.auto import (
    REMEMBERED_FOUND_NOTHING,
    after_run,
    judge_rendered,
    judge_static,
    routing,
    static_decision,
)
from scrapers.engine import AutoPlan
from scrapers.pages import read_page
from shared.jobspec import AutoDecision, FirstPage, JobSpec, resolve_config

URL = "http://127.0.0.1:8000/js/"
QUOTE = {"text": "span.text::text"}
SITE = "127.0.0.1:8000/js/*"


def first(items: int, values: int | None = None, scripts: bool = True) -> FirstPage:
    return {"url": URL, "items": items, "values": items if values is None else values,
            "has_scripts": scripts}  # fmt: skip


def decision(engine: str, learned: bool = False) -> AutoDecision:
    found: AutoDecision = {
        "engine": engine,
        "reason": "r",
        "static_items": 0,
        "rendered_items": 3,
    }
    if learned:
        found["learned"] = True
    return found


def page(n: int, script: bool = True, **config) -> tuple:
    spec = JobSpec("j", [URL], QUOTE, resolve_config({"item_selector": "div.q", **config}))
    body = "".join(f'<div class="q"><span class="text">Q{k}</span></div>' for k in range(n))
    html = f"<html><body>{body}{'<script>x()</script>' if script else ''}</body></html>"
    return read_page(spec, html, URL), spec.config


# ------------------------------------------------------------------ routing a claimed job


def test_a_new_auto_job_probes_on_the_static_engine():
    chosen = routing("scrapy", None, None, None)
    assert chosen.route is None and chosen.auto == AutoPlan(probe=True, probe_options=True)


def test_a_site_remembered_static_probes_without_the_browser_only_options():
    chosen = routing("scrapy", None, None, {"engine": "scrapy"})
    assert chosen.auto == AutoPlan(probe=True, probe_options=False) and not chosen.recalled


def test_a_site_remembered_for_the_browser_goes_straight_there():
    learned = decision("playwright", learned=True)
    chosen = routing("scrapy", None, None, {"engine": "playwright"}, learned)
    assert chosen.route == "playwright" and chosen.decision == learned and chosen.recalled


def test_a_stored_decision_is_followed_without_measuring_again():
    to_browser = routing("scrapy", decision("playwright"), None, None)
    assert to_browser.route == "playwright" and to_browser.decision == decision("playwright")
    handed_back = routing("scrapy", decision("scrapy"), None, None)
    assert handed_back.route is None and handed_back.auto == AutoPlan()


def test_the_browser_compares_a_handed_over_probe_or_checks_a_remembered_decision():
    probe = first(0)
    assert routing("playwright", None, probe, None).auto == AutoPlan(compare_with=probe)
    checked = routing("playwright", decision("playwright"), None, None)
    assert checked.auto == AutoPlan(check_first=True)
    assert routing("playwright", None, None, None).auto == AutoPlan()


# ------------------------------------------------------------------ the first page


def test_the_static_first_page_is_judged_with_the_jobs_browser_options_when_asked():
    outcome, config = page(3, scroll=4)
    judged = judge_static(outcome, URL, config, AutoPlan(probe=True))
    assert judged.render and "scroll" in judged.reason and judged.first_page["items"] == 3
    # a site measured static already: the options alone do not ask for a render again
    again = judge_static(outcome, URL, config, AutoPlan(probe=True, probe_options=False))
    assert not again.render and again.reason.endswith("→ scrapy")


def test_a_static_decision_exists_only_when_a_page_was_probed():
    assert static_decision(None, "why") is None
    assert static_decision(first(2), "why") == {
        "engine": "scrapy",
        "reason": "why",
        "static_items": 2,
        "rendered_items": None,
    }


def test_the_render_wins_only_with_more_and_else_hands_back():
    outcome, _ = page(3)
    won = judge_rendered(outcome, URL, AutoPlan(compare_with=first(0)))
    assert won.decision is not None and won.decision["engine"] == "playwright"
    assert won.decision["rendered_items"] == 3 and not won.back_to_static
    lost = judge_rendered(outcome, URL, AutoPlan(compare_with=first(3)))
    assert lost.decision is not None and lost.decision["engine"] == "scrapy" and lost.back_to_static


def test_a_remembered_browser_that_finds_nothing_says_the_site_is_measured_again():
    empty, _ = page(0)
    judged = judge_rendered(empty, URL, AutoPlan(check_first=True))
    assert judged.decision is None and judged.note == REMEMBERED_FOUND_NOTHING
    full, _ = page(2)
    assert judge_rendered(full, URL, AutoPlan(check_first=True)).note is None


# ------------------------------------------------------------------ after the run


def test_a_static_probe_that_needs_a_render_hands_the_job_to_the_browser():
    done = after_run("scrapy", True, "why", first(0), None, False, None, SITE)
    assert done.hand_to == "playwright" and done.reason == "why"
    assert done.fields == {"auto_probe": first(0)} and done.remember is None


def test_a_render_that_found_no_more_hands_back_and_is_remembered():
    done = after_run("playwright", False, "", first(1), decision("scrapy"), False, None, SITE)
    assert done.hand_to == "scrapy"
    assert done.remember == {**decision("scrapy"), "learned": False, "site": SITE}
    assert done.fields == {"auto_probe": None, "auto_decision": done.remember}


def test_a_decision_of_a_failed_run_is_kept_on_the_job_but_not_remembered():
    done = after_run("playwright", False, "", first(3), decision("playwright"), True, None, SITE)
    assert done.hand_to is None and done.remember is None
    assert done.fields == {"auto_decision": decision("playwright"), "auto_probe": None}


def test_a_learned_decision_whose_engine_found_nothing_is_forgotten():
    learned = decision("playwright", learned=True)
    done = after_run("playwright", False, "", first(0), None, False, learned, SITE)
    assert done.forget and done.fields == {"auto_decision": learned, "auto_probe": None}
    kept = after_run("playwright", False, "", first(2), None, False, learned, SITE)
    assert not kept.forget


def test_actions_next_click_or_a_login_send_auto_to_the_browser_unmeasured():
    from shared.actions import browser_required

    required = browser_required({"actions": [{"type": "press", "key": "Enter"}], "scroll": 3})
    assert required == ["actions"]
    assert browser_required({"actions": [], "next_click": None, "wait_for": "div"}) == []
    chosen = routing("scrapy", None, None, {"engine": "scrapy"}, None, ["next_click"])
    assert chosen.route == "playwright" and chosen.decision is not None
    assert "next_click" in chosen.decision["reason"]
    assert chosen.decision["engine"] == "playwright"
    # on the browser's queue: no comparison, no check of a remembered decision
    assert routing("playwright", chosen.decision, None, None, None, ["next_click"]).auto == (
        AutoPlan()
    )
