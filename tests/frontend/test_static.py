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


SCRIPT_TAG = re.compile(r"""static 'frontend/js/([\w-]+\.js)'""")
IMPORT = re.compile(r"""(?:from|import\(?)\s*["']\./([\w-]+\.js)["']""")


def _with_imports(name: str, loaded: set) -> set:
    if name not in loaded:
        loaded.add(name)
        for imported in IMPORT.findall((STATIC / "js" / name).read_text()):
            _with_imports(imported, loaded)
    return loaded


def test_each_page_loads_a_small_budget_of_scripts():
    """What a browser fetches for one page: the scripts every page loads (base.html), the page's own, and
    all they import. Unminified and commented, they stay under a budget a framework bundle alone would
    break (one of the common ones is about 140 KB minified); and no script is left that no page loads."""
    every_page = set()
    for name in SCRIPT_TAG.findall((TEMPLATES / "base.html").read_text()):
        _with_imports(name, every_page)
    loaded_somewhere, weights = set(every_page), {}
    for template in TEMPLATES.rglob("*.html"):
        own = SCRIPT_TAG.findall(template.read_text())
        if template.name == "base.html" or not own:
            continue
        page = set(every_page)
        for name in own:
            _with_imports(name, page)
        loaded_somewhere |= page
        weights[template.name] = sum((STATIC / "js" / name).stat().st_size for name in page)
    assert weights and max(weights.values()) < 60_000, weights
    assert {path.name for path in STATIC.rglob("*.js")} == loaded_somewhere


def test_pages_name_an_icon_that_exists(client):
    # Without one, every browser asks for /favicon.ico, a 404 on every first page load.
    html = client.get("/accounts/login/").content.decode()
    icon = re.search(r'<link rel="icon" href="/static/frontend/([^"]+)"', html)
    assert icon and (STATIC / icon.group(1)).is_file()


def test_the_icon_browsers_ask_for_by_default_points_at_the_sites_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("frontend/favicon.svg")
