"""Proxy pool rules without services: URL validation and ban signals."""

from __future__ import annotations

import base64

import pytest

from shared.proxies import is_ban, looks_like_captcha, proxy_url_problem


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:3128", "https://proxy.example:443", "http://u:p@10.0.0.1:8080"]
)
def test_http_and_https_proxy_urls_are_valid(url):
    assert proxy_url_problem(url) is None


@pytest.mark.parametrize("url", ["socks5://10.0.0.1:1080", "socks5h://u:p@h:1080", "socks4://h:1"])
def test_socks_proxies_are_refused_with_the_reason(url):
    assert "SOCKS proxies are not supported" in proxy_url_problem(url)


def test_the_browsers_guard_sends_the_pool_proxys_credentials_as_proxy_authorization():
    # the egress guard speaks to the pool proxy for Chromium: the URL's credentials, decoded
    from scrapers.egress import Upstream

    upstream = Upstream.parse("http://al%40ice:p%3Ass@10.0.0.1:8080")
    assert (upstream.host, upstream.port, upstream.tls) == ("10.0.0.1", 8080, False)
    assert upstream.authorization == "Basic " + base64.b64encode(b"al@ice:p:ss").decode()
    assert Upstream.parse("https://proxy.example").port == 443
    assert Upstream.parse("https://proxy.example").authorization is None


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
