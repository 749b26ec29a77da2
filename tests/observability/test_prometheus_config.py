"""The shipped Prometheus configuration passes Debian's promtool: the configuration, the
recording and alerting rules, and the rules' unit tests (each alert fires on the data it
is meant for, not before its `for`, and not on healthy data)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "observability" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (make install installs Debian's prometheus package "
    "where apt-get may run)",
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PROMTOOL), *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@needs_promtool
def test_promtool_accepts_the_configuration():
    checked = promtool("check", "config", str(CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the rule files the configuration names were found and checked with it
    assert f"SUCCESS: {len(RULES)} rule files found" in checked.stdout, checked.stdout
    for path in RULES:
        assert f"Checking {path}" in checked.stdout


@needs_promtool
def test_promtool_accepts_the_rules():
    assert RULES, "no rule files shipped"
    checked = promtool("check", "rules", *map(str, RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_every_alert_passes_its_unit_tests():
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    tested = promtool("test", "rules", *map(str, tests))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {
        rule["alert"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    exercised = {
        case["alertname"]
        for path in tests
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - exercised == set(), "alerts never shown to fire"


def test_sandbox_targets_never_honor_their_own_labels():
    """A sandbox's /metrics is the learner's to shape (scenarios add series): with
    honor_labels it could claim another session's `session` or `organisation`."""
    config = yaml.safe_load(CONFIG.read_text())
    discovered = [
        job
        for job in config["scrape_configs"]
        if any("/internal/prometheus/targets" in sd["url"] for sd in job.get("http_sd_configs", []))
    ]
    assert [job["job_name"] for job in discovered] == ["sandboxes"]
    for job in config["scrape_configs"]:
        assert job.get("honor_labels", False) is False, job["job_name"]


def test_every_platform_process_is_scraped():
    config = yaml.safe_load(CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"platform", "celery", "relay", "sandboxes"} <= set(jobs)
    # the platform's /metrics and the discovery answer only with the token once it is set
    for authorization in (
        jobs["platform"]["authorization"],
        jobs["sandboxes"]["authorization"],
        jobs["sandboxes"]["http_sd_configs"][0]["authorization"],
    ):
        assert authorization["credentials_file"] == "secrets/metrics-token"
        # without it Prometheus 2.42 sends the bare token on discovery requests: a 401
        assert authorization["type"] == "Bearer"
