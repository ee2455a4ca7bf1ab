"""Onboard a hospital from the command line: the tenant with its data key, and its first admin's invitation."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from hospitals.errors import DomainError
from hospitals.services import invitation_link, open_hospital


class Command(BaseCommand):
    help = ("Create a hospital (its own data key, its pages under /h/SLUG/) and invite its first admin, who "
            "then invites the hospital's doctors and patients.")

    def add_arguments(self, parser):
        parser.add_argument("slug", help="short name used in addresses, e.g. st-anne")
        parser.add_argument("name", help="the hospital's name as people read it")
        parser.add_argument("--admin-email", required=True, help="the first admin, invited by email")
        parser.add_argument("--site-url", required=True,
                            help="the site's address (https://neurofed.example): the invitation mail links to it")

    def handle(self, *args, slug, name, admin_email, site_url, **options):
        try:
            URLValidator(schemes=["https", "http"])(site_url)
        except ValidationError:
            raise CommandError(f"--site-url must be the site's address, e.g. https://neurofed.example, "
                               f"not {site_url!r}") from None
        try:
            hospital, invitation, token = open_hospital(slug=slug, name=name, admin_email=admin_email,
                                                        site_url=site_url)
        except DomainError as refused:
            raise CommandError(refused.detail) from None
        self.stdout.write(self.style.SUCCESS(f"Hospital {hospital.name} created at /h/{hospital.slug}/ "
                                             f"(id {hospital.pk}), with its own data key."))
        # Tried once the hospital was committed, inside open_hospital; False: the relay refused it or is down.
        if invitation.mail_sent is False:
            self.stderr.write(f"The invitation for its first admin, {invitation.email}, could not be emailed (the "
                              "log above names the error); it expires "
                              f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC and works once.")
        else:
            self.stdout.write(f"Invitation for its first admin, {invitation.email}, emailed; it expires "
                              f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC and works once.")
        link = invitation_link(token, None, site_url)
        if not link:  # a deployment without the pages: the token is accepted through the API
            self.stdout.write(f"If the mail does not arrive, give them this invitation token in person: {token}")
            return
        self.stdout.write(f"If the mail does not arrive, give them this link in person: {link}")
