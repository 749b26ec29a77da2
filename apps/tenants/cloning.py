"""Copies the migrated template schema into a new organisation's schema.

django-tenants' clone_schema() is a general PL/pgSQL function whose information_schema
scans grow with every schema in the database (1.35 s per organisation at 200 of them).
The template holds only tables, their constraints and indexes, identity columns and a few
seed rows, so this reads the template's catalog once (queries filtered by its namespace,
independent of how many organisations exist), turns it into DDL, and replays that DDL for
each new schema. Anything the plan does not know how to copy (views, functions, triggers,
free-standing sequences) sends creation back to django-tenants' general clone.
"""

import re
from dataclasses import dataclass

from django.db import connection
from django_tenants.clone import CloneSchema
from psycopg import sql

from apps.tenants.schemas import tenant_connection

SCHEMA_TOKEN = "__SDLAB_TARGET_SCHEMA__"  # noqa: S105 (a placeholder, not a secret)
SAFE_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class ClonePlan:
    fingerprint: tuple
    statements: tuple[str, ...]  # each with SCHEMA_TOKEN where the schema name goes


_plans: dict[str, ClonePlan] = {}


def _fetch(query: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return list(cursor.fetchall())


def _fingerprint(template: str) -> tuple:
    """Changes whenever a migration runs on the template."""
    rows = _fetch(
        sql.SQL("SELECT count(*), max(id) FROM {}")
        .format(sql.Identifier(template, "django_migrations"))
        .as_string(connection.connection),
        [],
    )
    return tuple(rows[0])


def _unsupported_objects(template: str) -> int:
    """Objects the DDL plan does not reproduce: views, partitioned or foreign tables,
    functions, triggers, rules, policies and row security, free-standing sequences, types
    of their own (enums, domains, composites, ranges) and storage options."""
    (count,) = _fetch(
        """
        SELECT
          (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND (c.relkind IN ('v', 'm', 'f', 'p', 'c') OR c.relispartition
              OR c.relrowsecurity OR c.reloptions IS NOT NULL))
        + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname = %s AND t.typtype IN ('e', 'd', 'r', 'm'))
        + (SELECT count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s)
        + (SELECT count(*) FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind = 'r')
        + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = %s)
        + (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND NOT t.tgisinternal)
        + (SELECT count(*) FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
            WHERE n.nspname = %s AND s.relkind = 'S'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = s.oid AND d.deptype = 'i'))
        """,
        [template] * 7,
    )[0]
    return int(count)


def _plan(template: str) -> ClonePlan | None:
    fingerprint = _fingerprint(template)
    cached = _plans.get(template)
    if cached is not None and cached.fingerprint == fingerprint:
        return cached
    if _unsupported_objects(template):
        return None
    if not SAFE_IDENTIFIER.match(template):
        return None
    qualified = f"{template}."
    target = f'"{SCHEMA_TOKEN}".'

    def retarget(ddl: str) -> str:
        # The template is not on the search path, so the catalog qualifies its names.
        return ddl.replace(qualified, target)

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname
            """,
            [template],
        )
        tables = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            """
            SELECT c.relname, con.conname, pg_get_constraintdef(con.oid), con.contype
            FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND con.contype IN ('p', 'u', 'c', 'f', 'x')
            ORDER BY CASE con.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'c' THEN 2
                     WHEN 'x' THEN 3 ELSE 4 END, c.relname, con.conname
            """,
            [template],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            """
            SELECT pg_get_indexdef(i.indexrelid)
            FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s
              AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
            ORDER BY 1
            """,
            [template],
        )
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            """
            SELECT c.relname, a.attname
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND a.attidentity <> '' AND c.relkind IN ('r', 'p')
            """,
            [template],
        )
        identities = cursor.fetchall()
        cursor.execute(
            """
            SELECT c.relname, string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind = 'r' AND a.attnum > 0
              AND NOT a.attisdropped AND a.attgenerated = ''
            GROUP BY c.relname
            """,
            [template],
        )
        # Generated columns are computed by the copy, so the rows are copied without them.
        copied_columns = dict(cursor.fetchall())
        cursor.execute(
            """
            SELECT c.relname, obj_description(c.oid, 'pg_class')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind = 'r'
              AND obj_description(c.oid, 'pg_class') IS NOT NULL
            """,
            [template],
        )
        table_comments = cursor.fetchall()

    def ident(name: str) -> str:
        return sql.Identifier(name).as_string(connection.connection)

    def literal(value: str) -> str:
        return sql.Literal(value).as_string(connection.connection)

    src = ident(template)
    statements: list[str] = [f'CREATE SCHEMA "{SCHEMA_TOKEN}"']
    for table in tables:
        statements.append(
            f'CREATE TABLE "{SCHEMA_TOKEN}".{ident(table)} (LIKE {src}.{ident(table)} '
            "INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING STORAGE "
            "INCLUDING COMMENTS)"
        )
    for table in tables:
        columns = copied_columns[table]
        statements.append(
            f'INSERT INTO "{SCHEMA_TOKEN}".{ident(table)} ({columns}) OVERRIDING SYSTEM VALUE '  # noqa: S608
            f"SELECT {columns} FROM {src}.{ident(table)}"
        )
    for table, column in identities:
        target_table = f'"{SCHEMA_TOKEN}".{ident(table)}'
        statements.append(
            f"SELECT setval(pg_get_serial_sequence('{target_table}', {literal(column)}), "  # noqa: S608
            f"coalesce(max({ident(column)}), 0) + 1, false) FROM {target_table}"
        )
    for table, name, definition, _ in constraints:
        statements.append(
            f'ALTER TABLE "{SCHEMA_TOKEN}".{ident(table)} ADD CONSTRAINT {ident(name)} '
            f"{retarget(definition)}"
        )
    statements.extend(retarget(ddl) for ddl in indexes)
    statements.extend(
        f'COMMENT ON TABLE "{SCHEMA_TOKEN}".{ident(table)} IS {literal(comment)}'
        for table, comment in table_comments
    )
    # Past the copy statements (which read the template on purpose), nothing may still name
    # the template: a reference the swap missed would tie every organisation to it.
    copies = 1 + 2 * len(tables) + len(identities)
    if any(template in statement for statement in statements[copies:]):
        return None
    plan = ClonePlan(fingerprint=fingerprint, statements=tuple(statements))
    _plans[template] = plan
    return plan


def schema_clone(*, template: str, target: str) -> None:
    """Creates schema `target` as a copy of `template`: tables, constraints, indexes, rows."""
    if not SAFE_IDENTIFIER.match(target):
        raise ValueError(f"not a schema name this platform creates: {target!r}")
    tenant_connection().set_schema_to_public()  # the template must not be on the search path
    plan = _plan(template)
    if plan is None:
        CloneSchema().clone_schema(template, target, "DATA", set_connection=False)
        return
    with connection.cursor() as cursor:
        for statement in plan.statements:
            cursor.execute(statement.replace(SCHEMA_TOKEN, target))
