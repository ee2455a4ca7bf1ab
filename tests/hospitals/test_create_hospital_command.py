"""manage.py create_hospital: onboarding a tenant from the command line."""

import re

import pytest
from django.core.management import CommandError, call_command

from hospitals.models import Hospital, Invitation, Role
from hospitals.services import usable_invitation

pytestmark = pytest.mark.django_db


def test_a_hospital_is_created_and_its_first_admin_invited(capsys, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("create_hospital", "royal", "Royal Infirmary", "--admin-email", "it@royal.example",
                     "--site-url", "https://neurofed.example/")
    out = capsys.readouterr().out
    hospital = Hospital.objects.get(slug="royal")
    invitation = Invitation.objects.get(hospital=hospital, role=Role.ADMIN)
    assert f"Royal Infirmary created at /h/royal/ (id {hospital.pk})" in out
    assert invitation.email in out
    # The token follows "#", which a browser never sends: opening the link writes it to no access log.
    printed = re.search(r"give them this link in person: (\S+)", out).group(1)
    [message] = mailoutbox
    assert message.to == ["it@royal.example"] and f"Accept it here: {printed}\n" in message.body
    token = printed.removeprefix("https://neurofed.example/invite/#")
    assert printed != token and usable_invitation(token) == invitation


def test_a_taken_slug_or_a_bad_email_is_refused_and_nothing_is_created(world):
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_hospital", "st-anne", "Another", "--admin-email", "it@another.example",
                     "--site-url", "https://neurofed.example")
    with pytest.raises(CommandError, match="first admin"):
        call_command("create_hospital", "royal", "Royal Infirmary", "--admin-email", "nobody",
                     "--site-url", "https://neurofed.example")
    with pytest.raises(CommandError, match="site's address"):
        call_command("create_hospital", "royal", "Royal Infirmary", "--admin-email", "it@royal.example",
                     "--site-url", "neurofed")
    with pytest.raises(CommandError, match="254 characters"):
        call_command("create_hospital", "royal", "Royal Infirmary", "--admin-email",
                     "it@" + ".".join(["royal" * 12] * 5) + ".example", "--site-url", "https://neurofed.example")
    assert not Hospital.objects.filter(slug="royal").exists() and Hospital.objects.count() == 2


@pytest.mark.parametrize("slug, name, code", [("st-anne", "Another", "slug_taken"), ("royal", "ST ANNE'S", "name_taken")])
def test_a_hospital_opened_twice_at_the_same_moment_is_refused_clearly(world, monkeypatch, slug, name, code):
    """The look-up before the insert cannot see a hospital committed in between: the database's constraints
    catch it (the name's in any case), and the answer is the same refusal as when it was there before."""
    from hospitals import services
    from hospitals.errors import DomainError

    looked_up = services._taken
    calls = []
    # The first look-up runs before the other operator's hospital is committed, so it finds nothing.
    def first_look_finds_nothing(*args):
        calls.append(args)
        return [] if len(calls) == 1 else looked_up(*args)

    monkeypatch.setattr(services, "_taken", first_look_finds_nothing)
    with pytest.raises(DomainError) as refused:
        services.create_hospital(slug=slug, name=name)
    assert refused.value.code == code and len(calls) == 2
    assert Hospital.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_invitation_mail_that_fails_is_not_reported_as_emailed(capsys, unreachable_mail_relay):
    call_command("create_hospital", "royal", "Royal Infirmary", "--admin-email", "it@royal.example",
                 "--site-url", "https://neurofed.example")
    out, err = capsys.readouterr()
    assert "emailed;" not in out and "could not be emailed" in err
    printed = re.search(r"give them this link in person: (\S+)", out).group(1)
    assert usable_invitation(printed.partition("#")[2]).email == "it@royal.example"


def test_a_name_with_a_nul_character_is_refused_before_any_query(world):
    from hospitals import services
    from hospitals.errors import DomainError

    with pytest.raises(DomainError) as refused:
        services.create_hospital(slug="royal", name="Royal\x00Infirmary")
    assert refused.value.code == "invalid_name" and Hospital.objects.count() == 2


@pytest.mark.parametrize("slug", ["-north", "north_general", "North", ""])
def test_a_short_name_the_commands_could_not_take_is_refused(world, slug):
    """A leading dash reads as an option on delete_hospital's command line (and --hospital's)."""
    from hospitals import services
    from hospitals.errors import DomainError

    with pytest.raises(DomainError) as refused:
        services.create_hospital(slug=slug, name="North General Infirmary")
    assert refused.value.code == "invalid_slug" and Hospital.objects.count() == 2
