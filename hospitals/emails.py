"""How an email address names an account: one comparison for sign-in, invitations and the sign-in brake.

Addresses are compared in lower case, lowered by Python on our side and by PostgreSQL's lower() on the
stored side. Not with Django's `iexact`: PostgreSQL compares that in upper case, where distinct addresses
meet ("ı" and "i", "ſ" and "s" all upper-case to ASCII), so an invitation to a look-alike address, or a
sign-in with one, found another person's account, and a sign-in brake keyed by the lower-case address
counted the look-alike apart.
"""

from django.contrib.auth import get_user_model
from django.db.models.functions import Lower


def email_key(email: str) -> str:
    """An address as it is compared and kept on invitations: trimmed and lower-cased."""
    return email.strip().lower()


def accounts_with_email(email: str):
    """The accounts whose address is `email` in any letter case (one, unless made by hand)."""
    return get_user_model().objects.alias(email_key=Lower("email")).filter(email_key=email_key(email))


def account_by_email(email: str):
    return accounts_with_email(email).order_by("pk").first()
