"""Proxy pool rules without services: URL validation and ban signals."""

from __future__ import annotations

import pytest

from shared.proxies import is_ban, looks_like_captcha, proxy_url_problem


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:3128", "https://proxy.example:443", "socks5://u:p@10.0.0.1:1080"]
)
def test_http_https_and_socks5_proxy_urls_are_valid(url):
    assert proxy_url_problem(url) is None


@pytest.mark.parametrize(
    "url", ["ftp://h:21", "http://h", "http://:80", "http://h:99999", "http:// h:80", "", None]
)
def test_malformed_proxy_urls_are_refused(url):
    assert proxy_url_problem(url)


def test_403_429_and_captcha_pages_are_ban_signals_other_answers_are_not():
    assert is_ban(403) and is_ban(429)
    assert is_ban(200, '<div class="g-recaptcha" data-sitekey="x"></div>')
    assert is_ban(200, "<html><head><title>Captcha check</title>")
    assert not is_ban(200, "<html><title>Shop</title><p>no captcha here? we never ask</p>")
    assert not is_ban(404) and not is_ban(500)
    assert not looks_like_captcha("")
