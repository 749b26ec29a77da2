"""A scenario's declared metrics as the lab page's panels read them."""

from sandbox.figures import declared_values, snapshot_from


def snap(at: float, faults: float, depth: float, count: float):
    return snapshot_from(
        [
            ("sdlab_injected_faults_total", {"service": "inventory", "kind": "delay"}, faults),
            ("sdlab_injected_faults_total", {"service": "gateway", "kind": "error"}, 1.0),
            ("sdlab_queue_depth", {"service": "queue"}, depth),
            ("sdlab_db_query_seconds_count", {"service": "inventory"}, count),
        ],
        at,
    )


SPECS = [
    ("sdlab_injected_faults_total", "counter", "Faults injected."),
    ("sdlab_queue_depth", "gauge", "Messages waiting."),
    ("sdlab_db_query_seconds", "histogram", "Query time."),
]


def test_counters_and_histograms_read_as_rates_and_gauges_as_values():
    readings = declared_values(snap(10.0, 100, 3, 50), snap(12.0, 140, 7, 60), SPECS)
    assert [(r["name"], r["value"], r["unit"]) for r in readings] == [
        ("sdlab_injected_faults_total", 20.0, "/s"),
        ("sdlab_queue_depth", 7.0, ""),
        ("sdlab_db_query_seconds", 5.0, "/s"),
    ]


def test_a_counter_reset_by_a_restart_is_not_a_negative_rate():
    readings = declared_values(snap(10.0, 100, 0, 0), snap(12.0, 8, 0, 0), SPECS[:1])
    assert readings[0]["value"] == 4.0  # moved by its new value, as rate() reads a reset
