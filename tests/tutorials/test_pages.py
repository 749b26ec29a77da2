"""Tutorial pages: the platform's tutorials for every member, an organisation's own only
in that organisation, and no raw HTML from content reaches the page."""

from pathlib import Path

from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import Role
from apps.tutorials.content import tutorial_read
from apps.tutorials.services import tutorials_store

CONTENT = Path(__file__).resolve().parents[2] / "apps" / "tutorials" / "content"


def test_members_browse_search_and_read_tutorials(org_a, org_b, login_as, tmp_path):
    with schema_context("public"):
        tutorials_store(tutorials=[tutorial_read(CONTENT / "slow-dependency")])
    own_folder = tmp_path / "our-incident-review"
    own_folder.mkdir()
    (own_folder / "tutorial.md").write_text(
        "---\nseries: resilience\ntitle: Our incident review\nlevel: advanced\nminutes: 30\n"
        "---\nIntro <script>alert(1)</script>\n"
    )
    (own_folder / "01-read.md").write_text(
        "---\ntitle: Read it\nchecks:\n  - {type: event, what: scenario enabled}\n---\nRead.\n"
    )
    with tenant_context(org_a):
        tutorials_store(tutorials=[tutorial_read(own_folder)])

    client = login_as(org_a, Role.LEARNER)
    listing = client.get("/tutorials/").content.decode()
    assert "Find the slow dependency" in listing
    assert "Our incident review" in listing
    assert "Find the slow dependency" in client.get("/tutorials/?q=slow").content.decode()
    assert "No tutorial matches" in client.get("/tutorials/?q=zzzz").content.decode()
    page = client.get("/tutorials/slow-dependency/").content.decode()
    assert page.count('data-testid="step"') == 4
    assert "inventory.p50_ms &gt; 300.0 for 5 s" in page
    assert "users.p95_ms &gt; 300.0 for 5 s" in page  # the cache hides the median, not the tail
    own = client.get("/tutorials/our-incident-review/").content.decode()
    assert "<script>alert(1)</script>" not in own
    assert "&lt;script&gt;" in own

    elsewhere = login_as(org_b, Role.LEARNER)
    assert "Our incident review" not in elsewhere.get("/tutorials/").content.decode()
    assert elsewhere.get("/tutorials/our-incident-review/").status_code == 404
    assert elsewhere.get("/tutorials/slow-dependency/").status_code == 200
