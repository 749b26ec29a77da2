import re


def requests_counted(text: str) -> float:
    pattern = (
        r"^django_http_requests_total_by_view_transport_method_total"
        r'\{method="GET",transport="http",view="healthz"\} ([0-9.e+]+)$'
    )
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_exposes_request_counters_that_count(site_client, db):
    client = site_client(None)
    before = requests_counted(client.get("/metrics").content.decode())
    for _ in range(3):
        client.get("/healthz")
    response = client.get("/metrics")

    assert response.status_code == 200
    text = response.content.decode()
    assert "# TYPE django_http_requests_total_by_method_total counter" in text
    assert requests_counted(text) == before + 3
    # Database metrics come through the django-tenants engine composed with django-prometheus.
    assert "django_db_execute_total" in text
