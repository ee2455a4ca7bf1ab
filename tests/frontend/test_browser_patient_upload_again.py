"""A patient who uploads the same file twice lands on the scan they uploaded before (it is not stored
twice), and the page says so, rather than showing an older upload as if it were the one just sent."""

import pytest

from diagnostics.models import Scan
from tests.diagnostics.samples import jpeg_bytes
from tests.factories import PASSWORD
from tests.frontend.conftest import PHONE, assert_fits_width, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


def _upload(page, content):
    page.goto("/h/st-anne/upload/")
    page.get_by_label("MRI scan file").set_input_files({"name": "scan.jpg", "mimeType": "image/jpeg", "buffer": content})
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/h/st-anne/scans/*/**")
    page.locator("#status .badge").wait_for()


def test_the_same_file_uploaded_again_says_it_was_uploaded_before(world, new_page):
    page = new_page(PHONE)
    sign_in(page, world.owner, PASSWORD)
    content = jpeg_bytes("glioma", 2)
    _upload(page, content)
    first = Scan.objects.get(patient__user=world.owner)
    assert page.locator("#already-uploaded").count() == 0  # a first upload is just that

    _upload(page, content)
    assert page.url.endswith(f"/h/st-anne/scans/{first.id}/?already=1")
    notice = page.locator("#already-uploaded")
    assert notice.inner_text() == (f"You had already uploaded this file, on {first.created_at:%-d %b %Y}. "
                                   "This is that scan: it was not stored a second time.")
    assert Scan.objects.filter(patient__user=world.owner).count() == 1
    assert_fits_width(page)
