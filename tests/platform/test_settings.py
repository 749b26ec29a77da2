"""Production settings refuse to start with an unsafe value, and say which."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAFE = {
    "SECRET_KEY": "x7" * 30,
    "DEBUG": "0",
    "BASE_DOMAIN": "lab.example.com",
    "SESSION_COOKIE_SECURE": "1",
    "CSRF_COOKIE_SECURE": "1",
    "METRICS_TOKEN": "scrape-" + "t" * 20,
}


def load_prod_settings(**overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SAFE}
    env.update(SAFE)
    env.update(overrides)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.prod"
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('loaded')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_safe_production_settings_load():
    result = load_prod_settings()
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


def test_debug_on_is_refused_by_name():
    result = load_prod_settings(DEBUG="1")
    assert result.returncode != 0
    assert "DEBUG must be off" in result.stderr


def test_default_secret_is_refused_by_name():
    result = load_prod_settings(SECRET_KEY="django-insecure-dev-only-change-me")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_insecure_cookies_are_refused_by_name():
    result = load_prod_settings(SESSION_COOKIE_SECURE="0", CSRF_COOKIE_SECURE="false")
    assert result.returncode != 0
    assert "SESSION_COOKIE_SECURE must be on" in result.stderr
    assert "CSRF_COOKIE_SECURE must be on" in result.stderr


def test_open_metrics_are_refused_by_name():
    result = load_prod_settings(METRICS_TOKEN="")
    assert result.returncode != 0
    assert "METRICS_TOKEN must be set" in result.stderr
