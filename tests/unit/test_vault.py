"""Job secrets: sealing, masking, keeping "***", key rotation; a session's cookies in Scrapy's
jar (pure logic, no services)."""

from __future__ import annotations

import pytest

from shared.sessions import combined, start_cookies
from shared.vault import MASK, Vault, VaultError, keep_masked, mask_config

CONFIG = {
    "max_pages": 5,
    "login": {"url": "https://e.com/login", "fields": {"#u": "me", "#p": "pw"}},
    "cookies": [{"name": "sid", "value": "abc", "domain": ".e.com", "path": "/"}],
    "headers": {"Authorization": "Bearer t", "COOKIE": "a=b", "Accept": "text/html"},
}


def test_seal_and_open_round_trip_and_only_secrets_change():
    vault = Vault(["k" * 20])
    sealed = vault.seal_config(CONFIG)
    assert sealed["max_pages"] == 5 and sealed["headers"]["Accept"] == "text/html"
    secrets = [
        sealed["login"]["fields"]["#u"],
        sealed["login"]["fields"]["#p"],
        sealed["cookies"][0]["value"],
        sealed["headers"]["Authorization"],
        sealed["headers"]["COOKIE"],
    ]
    assert all(s.startswith("sealed:v1:") for s in secrets)
    assert vault.seal_config(sealed) == sealed  # sealing twice changes nothing
    assert vault.open_config(sealed) == CONFIG
    assert vault.open_json(vault.seal_json({"cookies": [1]})) == {"cookies": [1]}


def test_a_rotated_key_still_opens_old_secrets_and_a_wrong_key_says_so():
    old = Vault(["old-key-0123456789"]).seal("pw")
    assert Vault(["new-key-0123456789", "old-key-0123456789"]).open(old) == "pw"
    with pytest.raises(VaultError, match="SECRETS_KEY"):
        Vault(["another-key-0123456789"]).open(old)


def test_masking_hides_every_secret_and_nothing_else():
    masked = mask_config(CONFIG)
    assert masked["login"]["fields"] == {"#u": MASK, "#p": MASK}
    assert masked["cookies"][0] == {**CONFIG["cookies"][0], "value": MASK}
    assert masked["headers"] == {"Authorization": MASK, "COOKIE": MASK, "Accept": "text/html"}
    assert mask_config(None) == {} and mask_config({"max_pages": 1}) == {"max_pages": 1}


def test_masked_values_sent_back_take_the_stored_secret_at_the_same_place():
    sent = {**mask_config(CONFIG), "headers": {"authorization": MASK}}
    kept, missing = keep_masked(sent, CONFIG)
    assert kept["login"] == CONFIG["login"] and kept["cookies"] == CONFIG["cookies"]
    assert kept["headers"] == {"authorization": "Bearer t"}  # header names: any case
    moved = {"cookies": [{"name": "sid", "value": MASK, "domain": "other.com"}]}
    _, missing = keep_masked(moved, CONFIG)
    assert missing and "config.cookies[name='sid'].value" in missing[0]


def test_session_cookies_reach_scrapy_requests_by_domain_and_path():
    from scrapy import Request
    from scrapy.http.cookies import CookieJar

    from scrapers.scrapy_session import jar_cookie

    config = {
        "cookies": [
            {"name": "host", "value": "1"},  # the job's host only
            {"name": "wide", "value": "2", "domain": ".e.com"},
            {"name": "deep", "value": "3", "path": "/private"},
        ]
    }
    session = combined(start_cookies(config, ["https://shop.e.com/x"]), None)
    jar = CookieJar()
    for found in session["cookies"]:
        jar.set_cookie(jar_cookie(found))

    def sent(url: str) -> str:
        request = Request(url)
        jar.add_cookie_header(request)
        return (request.headers.get("Cookie") or b"").decode()

    assert sorted(sent("https://shop.e.com/").split("; ")) == ["host=1", "wide=2"]
    assert sent("https://other.e.com/") == "wide=2"
    assert "deep=3" in sent("https://shop.e.com/private/a")
    assert sent("https://elsewhere.org/") == ""


def test_the_jobs_own_cookies_win_over_a_logins():
    login = {"cookies": [{"name": "a", "value": "login", "domain": "e.com", "path": "/"}]}
    mine = start_cookies({"cookies": [{"name": "a", "value": "mine"}]}, ["http://e.com/"])
    assert [c["value"] for c in combined(mine, login)["cookies"]] == ["mine"]


def test_the_secrets_key_is_generated_per_install_locally_and_required_in_production(tmp_path):
    from shared.settings import Settings, SettingsError

    local = Settings.from_env({}, env="local", var_dir=str(tmp_path))
    keys = local.secrets_keys()
    assert len(keys) == 1 and len(keys[0]) >= 48 and local.secrets_keys() == keys
    assert (tmp_path / "secrets-key").stat().st_mode & 0o777 == 0o600
    production = {"ENV": "production", "MONGO_URL": "mongodb://db"}
    with pytest.raises(SettingsError, match="SECRETS_KEY"):
        Settings.from_env(production).secrets_keys()
    with pytest.raises(SettingsError, match="SECRETS_KEY"):
        Settings.from_env({**production, "SECRETS_KEY": "short"})
    rotated = Settings.from_env({**production, "SECRETS_KEY": "n" * 20 + ", " + "o" * 20})
    assert rotated.secrets_keys() == ["n" * 20, "o" * 20]
