"""deploy/compose.yaml: valid against the Compose specification's JSON schema (the copy
check-jsonschema ships, installed from PyPI), and what the single-host stack needs: every
process and its health check, volumes for what keeps state, the platform hardened, and
Prometheus's scrape targets where compose puts the processes. Where a Docker engine
answers, the stack is brought up for real and /readyz must answer."""

import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import urllib.request
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.support.servers import wait_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
PLATFORM = ("migrate", "web", "worker", "beat", "relay")
LONG_RUNNING = ("web", "worker", "beat", "relay", "postgres", "redis", "prometheus", "grafana")
# distroless or scratch images: no shell, no HTTP client; Prometheus's `telemetry` job
# watches them instead (SdlabTargetDown)
NO_SHELL = ("loki", "tempo", "otel-collector")


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(
        files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_compose_file_is_valid_against_the_compose_specification():
    validator = compose_schema_validator()
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert errors == [], "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_refuses_what_compose_would_refuse():
    """The control: the schema in use really checks services (so the test above means
    something)."""
    validator = compose_schema_validator()
    misspelt = copy.deepcopy(compose())
    misspelt["services"]["web"]["healtcheck"] = misspelt["services"]["web"].pop("healthcheck")
    assert not validator.is_valid(misspelt)
    wrong = copy.deepcopy(compose())
    wrong["services"]["worker"]["depends_on"]["migrate"]["condition"] = "service_finished"
    assert not validator.is_valid(wrong)


def test_every_process_is_there_with_a_health_check():
    services = compose()["services"]
    expected = {*PLATFORM, "postgres", "redis", "prometheus", "grafana", *NO_SHELL}
    assert expected <= set(services)
    for name in LONG_RUNNING:
        test = services[name]["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
    for name in NO_SHELL:
        assert "healthcheck" not in services[name]  # a check that cannot run marks it unhealthy


def test_state_lives_in_named_volumes():
    config = compose()
    volumes = set(config["volumes"])
    for service, path in {
        "postgres": "/var/lib/postgresql/data",
        "redis": "/data",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
        "loki": "/loki",
        "tempo": "/var/tempo",
    }.items():
        mounts = [m.split(":") for m in config["services"][service]["volumes"]]
        assert any(src in volumes and dst == path for src, dst, *_ in mounts), service


def test_the_platform_runs_one_hardened_image_after_its_migrations():
    services = compose()["services"]
    images = {services[name]["image"] for name in PLATFORM}
    assert len(images) == 1
    for name in PLATFORM:
        service = services[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["environment"]["DJANGO_SETTINGS_MODULE"] == "config.settings.prod"
        if name != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == (
                "service_completed_successfully"
            )
    assert services["migrate"]["command"][-2:] == ["migrate_schemas", "--noinput"]
    # only the worker starts sandboxes, so only the worker holds the engine's socket
    holders = [
        name
        for name, service in services.items()
        if any("docker.sock" in m for m in service.get("volumes", []))
    ]
    assert holders == ["worker"]


def test_prometheus_scrapes_where_compose_runs_each_process():
    config = compose()
    services = config["services"]
    prometheus = yaml.safe_load((ROOT / "observability/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    listening = {
        "web": "8000",
        "worker": services["worker"]["environment"]["CELERY_METRICS_PORT"],
        "relay": services["relay"]["command"][
            services["relay"]["command"].index("--metrics-port") + 1
        ],
    }
    for job, service in {"platform": "web", "celery": "worker", "relay": "relay"}.items():
        (target,) = jobs[job]["static_configs"][0]["targets"]
        assert target == f"{service}:{listening[service]}", job
    for service in ("worker", "relay"):  # reachable from Prometheus's container
        assert services[service]["environment"]["METRICS_ADDR"] == "0.0.0.0"  # noqa: S104
    discovery = jobs["sandboxes"]["http_sd_configs"][0]["url"]
    web_env = services["web"]["environment"]
    assert discovery.startswith(f"http://{web_env['PROMETHEUS_SD_TARGET']}/")
    assert "web" in web_env["EXTRA_ALLOWED_HOSTS"].split(",")
    token = next(s for s in services["prometheus"]["secrets"] if s["source"] == "metrics_token")
    credentials = jobs["platform"]["authorization"]["credentials_file"]
    assert token["target"] == f"/etc/prometheus/{credentials}"
    assert config["secrets"]["metrics_token"]["environment"] == "METRICS_TOKEN"


def docker_engine_problem() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker client is installed"
    info = subprocess.run([docker, "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        return "no Docker engine answers here (`docker info` failed)"
    plugin = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, check=False
    )
    if plugin.returncode != 0:
        return "the docker compose plugin is not installed"
    return None


ENGINE_PROBLEM = docker_engine_problem()


@pytest.mark.skipif(
    ENGINE_PROBLEM is not None,
    reason=f"the live compose test needs a Docker engine: {ENGINE_PROBLEM}",
)
def test_the_stack_comes_up_and_is_ready(tmp_path):
    project = f"sdlab-test-{secrets.token_hex(3)}"
    port = "18000"
    env = {
        **os.environ,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "METRICS_TOKEN": secrets.token_urlsafe(24),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(16),
        "BASE_DOMAIN": "lab.example.test",
        "WEB_PORT": port,
    }
    base = ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", project]
    subprocess.run(
        ["docker", "build", "-f", "deploy/sandbox/Dockerfile", "-t", "sdlab-sandbox:latest", "."],
        cwd=ROOT,
        env=env,
        check=True,
    )
    try:
        subprocess.run(
            [*base, "up", "-d", "--build", "--wait", "--wait-timeout", "600"],
            cwd=ROOT,
            env=env,
            check=True,
        )

        def ready() -> dict | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                    return json.loads(r.read())
            except OSError:
                return None

        assert wait_for(ready, "the stack's /readyz", 120) == {"status": "ready"}
    finally:
        subprocess.run([*base, "down", "-v"], cwd=ROOT, env=env, check=False)


def test_secrets_are_required_not_defaulted():
    """No secret has a default value anyone could reuse: compose refuses to start without it."""
    text = COMPOSE_FILE.read_text()
    for variable in ("SECRET_KEY", "METRICS_TOKEN", "POSTGRES_PASSWORD", "BASE_DOMAIN"):
        uses = re.findall(r"\$\{" + variable + r"(:?[-?][^}]*)?\}", text)
        assert uses, variable
        assert all(use.startswith(":?") for use in uses), variable
