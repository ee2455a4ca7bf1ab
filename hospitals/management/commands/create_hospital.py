"""Onboard a hospital from the command line: the tenant with its data key, and its first admin's invitation."""

from django.core.management.base import BaseCommand, CommandError
from django.urls import NoReverseMatch, reverse

from hospitals.errors import DomainError
from hospitals.services import open_hospital


class Command(BaseCommand):
    help = ("Create a hospital (its own data key, its pages under /h/SLUG/) and invite its first admin, who "
            "then invites the hospital's doctors and patients.")

    def add_arguments(self, parser):
        parser.add_argument("slug", help="short name used in addresses, e.g. st-anne")
        parser.add_argument("name", help="the hospital's name as people read it")
        parser.add_argument("--admin-email", required=True, help="the first admin, invited by email")
        parser.add_argument("--site-url", default="",
                            help="the site's address (https://neurofed.example), to print the invitation link")

    def handle(self, *args, slug, name, admin_email, site_url, **options):
        try:
            hospital, invitation, token = open_hospital(slug=slug, name=name, admin_email=admin_email)
        except DomainError as refused:
            raise CommandError(refused.detail) from None
        self.stdout.write(self.style.SUCCESS(f"Hospital {hospital.name} created at /h/{hospital.slug}/ "
                                             f"(id {hospital.pk}), with its own data key."))
        self.stdout.write(f"Invitation for its first admin, {invitation.email}, emailed; it expires "
                          f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC and works once.")
        try:
            path = reverse("frontend:invite", args=[token])
        except NoReverseMatch:  # a deployment without the pages: the token is accepted through the API
            self.stdout.write(f"If the mail does not arrive, give them this invitation token in person: {token}")
            return
        link = f"{site_url.rstrip('/')}{path}" if site_url else f"{path} on the site"
        self.stdout.write(f"If the mail does not arrive, give them this link in person: {link}")
