"""What a patient reads, and where the keyboard is, when the upload page refuses a file: the server's
sentence with what to do next, never words meant for developers, and the focus back on the file field."""

import pytest

from diagnostics.models import Scan
from tests.factories import PASSWORD
from tests.frontend.conftest import PHONE, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHOOSE_ANOTHER = ("Choose another file: the MRI image or file the hospital gave you. "
                  "If you are not sure which file that is, ask the hospital.")


def _upload(page, name, content: bytes, mime="image/png"):
    page.goto("/h/st-anne/upload/")
    page.get_by_label("MRI scan file").set_input_files({"name": name, "mimeType": mime, "buffer": content})
    page.get_by_role("button", name="Upload").click()
    failure = page.locator("#upload-error")
    failure.wait_for()
    return failure


def _focused_id(page):
    return page.evaluate("document.activeElement && document.activeElement.id")


@pytest.mark.parametrize(("name", "content", "sentence"), [
    ("empty.jpg", b"", "The file is empty."),
    ("notes.png", b"These are my notes, not an image.\n",
     "Only JPEG, PNG, DICOM (single file or zipped series) and NIfTI are accepted."),
])
def test_a_refused_file_says_what_to_do_next_and_the_keyboard_is_back_on_the_file_field(
        world, new_page, name, content, sentence):
    page = new_page(PHONE)
    sign_in(page, world.owner, PASSWORD)
    failure = _upload(page, name, content)
    assert failure.inner_text() == f"{sentence} {CHOOSE_ANOTHER}"
    # The Upload button was disabled while the file travelled; the focus must not be left on the page.
    assert _focused_id(page) == "scan-file"
    assert page.get_by_role("button", name="Upload").is_enabled()
    assert not Scan.objects.exists()


def test_an_answer_not_worded_for_a_person_is_replaced_by_one_that_is(world, new_page):
    """Without its CSRF cookie the API answers with the framework's own words ("CSRF Failed: ...")."""
    page = new_page(PHONE)
    sign_in(page, world.owner, PASSWORD)
    page.goto("/h/st-anne/upload/")
    page.context.clear_cookies(name="csrftoken")
    page.get_by_label("MRI scan file").set_input_files(
        {"name": "scan.png", "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n"})
    page.get_by_role("button", name="Upload").click()
    failure = page.locator("#upload-error")
    failure.wait_for()
    assert failure.inner_text() == ("Something went wrong, and your file was not stored. "
                                    "Reload this page and try again; if it keeps happening, contact the hospital.")
    assert _focused_id(page) == "scan-file"
    assert not Scan.objects.exists()
