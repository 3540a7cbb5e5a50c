"""The scheme rule: only http and https leave a worker, however the scheme is spelled."""

from __future__ import annotations

import pytest

from scrapers.extract import extract_links
from shared.jobspec import url_problem
from shared.schemes import is_web_url, scheme_problem, skipped


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/hostname",
        "FILE:///etc/hostname",
        "File://localhost/etc/hostname",
        " file:///etc/hostname",
        "\x00file:///etc/hostname",
        "fi\tle:///etc/hostname",
        "fi\nle:///etc/hostname",
        "data:text/html,<p>x</p>",
        "ftp://example.com/x",
        "chrome://settings",
        "view-source:http://example.com/",
        "blob:http://example.com/1234",
        "javascript:alert(1)",
        "filesystem:http://example.com/temporary/x",
        "//example.com/no-scheme",
        "/relative",
        "",
    ],
)
def test_every_other_scheme_is_refused(url):
    assert not is_web_url(url)
    assert "only http and https" in (scheme_problem(url) or "")
    assert url_problem(url) is not None


@pytest.mark.parametrize("url", ["http://example.com/", "HTTPS://example.com/a?b", " http://x.io"])
def test_http_and_https_pass(url):
    assert is_web_url(url) and scheme_problem(url) is None


def test_the_log_line_names_the_url_and_the_scheme():
    line = skipped("FILE:///var/jwt-secret", "sitemap entry")
    assert line.startswith("skipped sitemap entry FILE:///var/jwt-secret")
    assert "file: is refused" in line


def test_links_of_other_schemes_are_never_followed():
    from parsel import Selector

    page = Selector(
        text='<a href="file:///etc/passwd">a</a><a href="FILE:///x">b</a>'
        '<a href=" javascript:x()">c</a><a href="/next">d</a>'
    )
    assert extract_links(page, "http://site.test/", None, same_site=True) == [
        "http://site.test/next"
    ]
