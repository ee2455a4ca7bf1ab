"""The doctor's own review, reaching the case page over the socket before the answer to its save, is
never announced as a colleague's ("… saved a review meanwhile"): the page only learns from that answer
which review was the doctor's own."""

import pytest

from tests.frontend.conftest import open_case

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]


def test_the_doctors_own_review_arriving_before_its_answer_is_not_a_colleagues(world, analysed_scan, new_page):
    doctor = open_case(new_page, world, analysed_scan)
    held = []
    doctor.route("**/review/", lambda route: held.append(route), times=1)
    doctor.locator("#diagnosis-choices").get_by_label("Pituitary").check()
    doctor.locator("#review-submit").click()
    while not held:
        doctor.wait_for_timeout(20)

    # The review is saved and pushed; the page fetches the scan and lists it while its answer is held back.
    answer = held[0].fetch()
    doctor.locator("#reviews").get_by_text("Pituitary tumour (was Glioma)").wait_for()
    doctor.wait_for_timeout(200)  # time for anything else the fetched scan would make the page say
    assert "meanwhile" not in doctor.locator("#review-message").inner_text()

    held[0].fulfill(response=answer)
    doctor.locator("#review-message .notice.ok").wait_for()
    assert doctor.locator("#review-message").inner_text() == "Saved: Pituitary tumour (was Glioma)."
