"""A real headless Chromium (Debian's package, driven by Playwright) against the real ASGI
server, which writes its mail to files the test reads as an outbox."""

import email
import email.policy
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.servers import asgi_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class Outbox:
    """Mail the server sent, read from the file backend's directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def messages(self) -> list[email.message.EmailMessage]:
        found = []
        for path in sorted(self.directory.glob("*.log")):
            for chunk in path.read_text().split("-" * 79):
                if chunk.strip():
                    found.append(
                        email.message_from_string(chunk.lstrip(), policy=email.policy.default)
                    )
        return found

    def latest_to(self, address: str) -> str:
        mine = [m for m in self.messages() if address in str(m.get("To", ""))]
        assert mine, f"no mail to {address} in {self.directory}"
        body = mine[-1].get_body(preferencelist=("plain",))
        return body.get_content() if body is not None else ""

    def link_to(self, address: str) -> str:
        match = re.search(r"https?://\S+/join/\S+/", self.latest_to(address))
        assert match, f"no invitation link in the mail to {address}"
        return match.group(0)


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    directory = tmp_path / "outbox"
    directory.mkdir()
    return Outbox(directory)


@pytest.fixture
def e2e_port(transactional_db: None, outbox: Outbox) -> Iterator[int]:
    with asgi_server(
        TEST_EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        TEST_EMAIL_FILE_PATH=str(outbox.directory),
    ) as port:
        yield port


@pytest.fixture
def browser() -> Iterator[object]:
    """Per test: Playwright's sync API runs an event loop in this thread while it lives,
    which other tests on the same xdist worker (asyncio.run) must not find."""
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"Chromium is not installed at {CHROMIUM} (make install installs Debian's "
            "chromium where apt-get is allowed; set CHROMIUM to another path)"
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own database
    # calls (fixtures, assertions) are synchronous and safe, which Django cannot tell.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Callable[[object, str], None]:
    """Saves named screenshots as test artefacts under test-artifacts/e2e/<test>/."""
    directory = ARTIFACTS / request.node.name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)

    def shot(page: object, name: str) -> None:
        page.screenshot(path=str(directory / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]

    return shot
