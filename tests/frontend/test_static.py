"""The CSS and JavaScript load nothing from outside the server (closed hospital networks)."""

import re
from pathlib import Path

import frontend

STATIC = Path(frontend.__file__).parent / "static" / "frontend"
TEMPLATES = Path(frontend.__file__).parent / "templates"


def test_no_asset_or_template_reaches_outside():
    external = re.compile(r"""(?:src|href|url\()\s*=?\s*["']?(?:https?:)?//""", re.I)
    offenders = []
    for path in [*STATIC.rglob("*.js"), *STATIC.rglob("*.css"), *TEMPLATES.rglob("*.html")]:
        text = path.read_text()
        if external.search(text) or "@import" in text or "fonts.googleapis" in text:
            offenders.append(path.name)
    assert offenders == []


def test_javascript_is_small_hand_written_modules():
    scripts = sorted(STATIC.rglob("*.js"))
    assert scripts, "no scripts found"
    for path in scripts:
        text = path.read_text()
        assert "eval(" not in text and "new Function" not in text, path.name
        # Hand-written, not a minified bundle: no line longer than a screen.
        assert max(len(line) for line in text.splitlines()) < 220, path.name
    # Every page's scripts together, unminified and commented: a budget that a framework bundle would break.
    assert sum(path.stat().st_size for path in scripts) < 80_000


def test_pages_name_an_icon_that_exists(client):
    # Without one, every browser asks for /favicon.ico, a 404 on every first page load.
    html = client.get("/accounts/login/").content.decode()
    icon = re.search(r'<link rel="icon" href="/static/frontend/([^"]+)"', html)
    assert icon and (STATIC / icon.group(1)).is_file()


def test_the_icon_browsers_ask_for_by_default_points_at_the_sites_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("frontend/favicon.svg")
