"""Re-activate the previously active model version of a task.

    manage.py rollback_model --task classify
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Retire the active model version of a task and re-activate the one active before it."

    def add_arguments(self, parser):
        parser.add_argument("--task", choices=["classify", "segment"], required=True)

    def handle(self, *args, **options):
        from diagnostics import registry

        try:
            version = registry.rollback_model(options["task"])
        except (registry.NoActiveModel, registry.ModelIntegrityError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"active: {version}")
