"""How fast organisations are created and how a no-op deploy scales with their number.

    make bench            (or: python -m config.localservices run -- python benchmarks/tenants.py)

Uses a scratch database `sdlab_bench` next to DATABASE_URL's, created and dropped here.
Prints: organisation_create median (and p90) over 20 creations with 10 and with 200
organisations already present, and the time of a no-op `migrate_schemas` at 200+
organisations, ours (outdated schemas only) beside django-tenants' standard executor.
Target: organisation creation median under 1 s at both sizes.
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "sdlab_bench"
SAMPLES = 20


def scratch_database_url() -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sdlab")
    parts = urlsplit(base)
    admin = urlunsplit(parts._replace(path="/postgres")).replace("postgres://", "postgresql://", 1)
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}")), admin


def recreate(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def drop(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    url, admin = scratch_database_url()
    recreate(admin)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    try:
        manage(env, "migrate_schemas", "--noinput", "-v", "0")

        import django

        django.setup()
        from apps.tenants.models import Organisation
        from apps.tenants.services import organisation_create

        counter = iter(range(1, 10_000))

        def create() -> float:
            n = next(counter)
            started = time.perf_counter()
            organisation_create(name=f"Bench {n}", slug=f"bench-{n}")
            return time.perf_counter() - started

        def fill_to(count: int) -> None:
            while Organisation.objects.count() < count:
                create()

        def measure(existing: int) -> list[float]:
            fill_to(existing)
            return [create() for _ in range(SAMPLES)]

        results = {}
        for existing in (10, 200):
            samples = measure(existing)
            results[existing] = samples
            p90 = statistics.quantiles(samples, n=10)[-1]
            print(
                f"organisation_create with {existing:>3} existing: median "
                f"{statistics.median(samples) * 1000:7.1f} ms, p90 {p90 * 1000:7.1f} ms, "
                f"max {max(samples) * 1000:7.1f} ms  (n={SAMPLES}, target median < 1000 ms)",
                flush=True,
            )
        total = Organisation.objects.count()
        ours = [manage(env, "migrate_schemas", "--noinput", "-v", "0") for _ in range(3)]
        print(
            f"migrate_schemas no-op at {total} organisations (outdated-only executor): "
            f"median {statistics.median(ours):.2f} s over 3 runs",
            flush=True,
        )
        standard = manage(env, "migrate_schemas", "--noinput", "-v", "0", "--executor", "standard")
        print(
            f"migrate_schemas no-op at {total} organisations (django-tenants standard executor, "
            f"every schema): {standard:.2f} s",
            flush=True,
        )
        verdict = all(statistics.median(s) < 1.0 for s in results.values())
        print(f"target (creation median < 1 s at 10 and 200): {'met' if verdict else 'NOT met'}")
    finally:
        from django.db import connections

        connections.close_all()
        drop(admin)


if __name__ == "__main__":
    main()
