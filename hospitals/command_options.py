"""Options several management commands share, checked the same way in each: a sentence, never a traceback."""

from django.core.management.base import CommandError

from hospitals.models import Hospital

# Ten years: older than anything a sweep or requeue can mean, and far from the date arithmetic's limits.
AGE_MAX_MIN = 10 * 365 * 24 * 60


def chosen_hospital(slug: str | None) -> Hospital | None:
    """The hospital a command's --hospital names, or None when the option was left out (every hospital).

    An empty value (an unset variable in a script) is refused rather than taken as "every hospital"."""
    if slug is None:
        return None
    if not slug.strip():
        raise CommandError("--hospital is empty; give a hospital's slug, or leave the option out for every hospital.")
    hospital = Hospital.objects.filter(slug=slug.strip()).first()
    if hospital is None:
        raise CommandError(f"No hospital with the slug {slug!r}.")
    return hospital


def check_age_min(value: int, *, least: int, why: str) -> None:
    """An --older-than-min between `least` (`why` says why no less) and ten years."""
    if value < least:
        raise CommandError(f"--older-than-min must be at least {least}{' minutes' if least > 1 else ''}: {why}")
    if value > AGE_MAX_MIN:
        raise CommandError(f"--older-than-min must be at most {AGE_MAX_MIN} (ten years), not {value}.")
