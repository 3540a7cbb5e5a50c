"""Scrapyd's schedule.json priority (a float, 0 by default, higher first) on our 0-9."""

from __future__ import annotations

import pytest

from api.services.scrapyd import ScrapydError, _priority


@pytest.mark.parametrize(
    ("sent", "ours"),
    [
        (None, 5),
        ("", 5),
        ("0", 5),
        ("1", 6),
        ("3", 8),
        ("-3", 2),
        ("2.6", 8),
        ("100", 9),
        ("-1e9", 0),
    ],
)
def test_scrapyd_priorities_map_onto_ours_around_normal(sent, ours):
    assert _priority(sent) == ours


@pytest.mark.parametrize("sent", ["high", "nan", "1,5"])
def test_a_priority_that_is_not_a_number_is_scrapyds_invalid_parameter(sent):
    with pytest.raises(ScrapydError, match="priority is invalid"):
        _priority(sent)
