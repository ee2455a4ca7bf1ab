"""The zones a hospital may choose are places' clocks that a browser knows too: frontend/static/frontend/
js/time.js formats every time on the hospital's pages in the zone on <body>, and a zone the browser
refuses (Intl throws) leaves the worklist, the case and the result pages without their script."""

import json
import shutil
import subprocess

import pytest

from hospitals.models import time_zone_names

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["Factory", "localtime"])
def test_a_name_that_is_no_places_clock_is_neither_offered_nor_saved(client, world, name):
    client.force_login(world.admin_a)
    assert f"<option>{name}</option>" not in client.get("/h/st-anne/settings/").content.decode()

    response = client.post("/h/st-anne/settings/", {"patients_see_ai_results": "after_review", "time_zone": name})

    assert response.status_code == 400
    world.a.refresh_from_db()
    assert world.a.time_zone == ""


def test_the_api_refuses_them_too(world, api):
    response = api(world.admin_a).patch(f"/api/v1/hospitals/{world.a.slug}/settings/", {"time_zone": "Factory"},
                                          format="json")
    assert response.status_code == 400
    world.a.refresh_from_db()
    assert world.a.time_zone == ""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js for a browser's Intl")
def test_every_zone_offered_is_one_intl_formats_in():
    script = ("const refused = []; for (const zone of JSON.parse(require('fs').readFileSync(0, 'utf8'))) {"
              " try { new Intl.DateTimeFormat('en-GB', {timeZone: zone}); } catch (e) { refused.push(zone); } }"
              " console.log(JSON.stringify(refused));")
    done = subprocess.run(["node", "-e", script], input=json.dumps(time_zone_names()), capture_output=True,
                          text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the page's module")
@pytest.mark.parametrize("zone, shown", [("Asia/Kolkata", "7 Dec 2026, 01:30"),
                                         # A zone this browser is too old to know: UTC, said so.
                                         ("Mars/Olympus_Mons", "6 Dec 2026, 20:00 UTC")])
def test_time_js_formats_on_the_pages_zone_and_falls_back_to_utc_when_the_browser_refuses_it(zone, shown):
    from django.conf import settings

    module = (settings.BASE_DIR / "frontend" / "static" / "frontend" / "js" / "time.js").as_uri()
    script = ("globalThis.document = {body: {dataset: {timeZone: process.argv[1]}}};"
              f" const {{formatTime}} = await import('{module}');"
              " console.log(formatTime('2026-12-06T20:00:00Z'));")
    done = subprocess.run(["node", "--input-type=module", "-e", script, zone], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == shown
