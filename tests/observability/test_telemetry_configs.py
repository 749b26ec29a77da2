"""Loki, Tempo and the OpenTelemetry Collector. None of the three can run here (no
Debian package, no container engine), so these tests check what each would refuse or
silently get wrong at start: a pipeline naming a component that is not defined, a port
the platform does not send to, a storage path outside the volume compose gives it."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "observability"


def load(relative: str) -> dict:
    return yaml.safe_load((OBS / relative).read_text())


def compose() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())


def test_collector_pipelines_use_only_defined_components():
    config = load("otel-collector/collector.yml")
    service = config["service"]
    for extension in service.get("extensions", []):
        assert extension in config["extensions"]
    for name, pipeline in service["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{name} names undefined {kind}: {component}"
    defined = {k: set(config[k]) for k in ("receivers", "processors", "exporters")}
    used = {k: {c for p in service["pipelines"].values() for c in p.get(k, [])} for k in defined}
    assert used == defined, "defined but unused components"


def test_collector_takes_traces_and_logs_and_sends_them_on():
    pipelines = load("otel-collector/collector.yml")["service"]["pipelines"]
    assert "otlp" in pipelines["traces"]["receivers"]
    assert pipelines["traces"]["exporters"] == ["otlp/tempo"]
    assert {"otlp", "filelog/containers"} <= set(pipelines["logs"]["receivers"])
    assert pipelines["logs"]["exporters"] == ["otlphttp/loki"]
    for pipeline in pipelines.values():
        # memory_limiter first, batch last: the order the collector's docs require
        assert pipeline["processors"][0] == "memory_limiter"
        assert pipeline["processors"][-1] == "batch"


def test_the_platform_and_tempo_and_loki_meet_on_the_same_ports():
    config = load("otel-collector/collector.yml")
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    services = compose()["services"]
    assert services["web"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == (
        f"http://otel-collector:{http.rsplit(':', 1)[1]}"
    )
    tempo = load("tempo/tempo.yml")
    grpc = tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert config["exporters"]["otlp/tempo"]["endpoint"] == f"tempo:{grpc.rsplit(':', 1)[1]}"
    loki = load("loki/loki.yml")
    assert config["exporters"]["otlphttp/loki"]["endpoint"] == (
        f"http://loki:{loki['server']['http_listen_port']}/otlp"
    )
    assert loki["limits_config"]["allow_structured_metadata"] is True  # OTLP needs it


def test_loki_and_tempo_write_inside_their_volumes():
    services = compose()["services"]
    loki = load("loki/loki.yml")
    loki_volume = next(v.split(":")[1] for v in services["loki"]["volumes"] if "data" in v)
    assert loki["common"]["path_prefix"].startswith(loki_volume)
    for path in loki["common"]["storage"]["filesystem"].values():
        assert path.startswith(loki_volume)
    tempo = load("tempo/tempo.yml")
    tempo_volume = next(v.split(":")[1] for v in services["tempo"]["volumes"] if "data" in v)
    storage = tempo["storage"]["trace"]
    for path in (storage["wal"]["path"], storage["local"]["path"]):
        assert path.startswith(tempo_volume)
    # Tempo's span metrics go to a Prometheus that accepts remote writes
    write = tempo["metrics_generator"]["storage"]["remote_write"][0]["url"]
    assert write.startswith("http://prometheus:9090/")
    assert "--web.enable-remote-write-receiver" in services["prometheus"]["command"]


def test_platform_logs_carry_the_service_name_of_their_traces():
    """Grafana's trace-to-logs link looks for the trace's service.name among the log
    labels: the collector takes it from each container's `sdlab.service` label."""
    services = compose()["services"]
    logged = compose()["x-logging"]["options"]["labels"].split(",")
    assert "sdlab.service" in logged
    for name in ("web", "worker", "beat", "relay"):
        service = services[name]
        assert service["labels"]["sdlab.service"] == service["environment"]["OTEL_SERVICE_NAME"]
    operators = load("otel-collector/collector.yml")["receivers"]["filelog/containers"]["operators"]
    moved = [
        op["from"]
        for op in operators
        if op["type"] == "move" and op["to"] == 'resource["service.name"]'
    ]
    # the platform's own name comes last, so it wins over the compose service name
    assert moved[-1] == 'attributes["attrs"]["sdlab.service"]'
    tempo = yaml.safe_load((OBS / "grafana/provisioning/datasources/datasources.yml").read_text())[
        "datasources"
    ]
    (links,) = [d["jsonData"]["tracesToLogsV2"] for d in tempo if d["uid"] == "tempo"]
    assert {"key": "service.name", "value": "service_name"} in links["tags"]
