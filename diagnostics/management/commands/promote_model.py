"""Register and/or promote a model version; the active version is what inference uses.

    manage.py promote_model --task classify --model-version v2                 # promote a registered one
    manage.py promote_model --task classify --model-version v2 --register var/models/classify/classifier.json
    manage.py promote_model --task segment --model-version fed-7 --register PATH --source federated --run-id 7
    manage.py promote_model --list

A version that scored lower on validation than the active one is refused unless --accept-lower-score.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError


class Command(BaseCommand):
    help = "Register a model bundle and/or make a registered version the active one."

    def add_arguments(self, parser):
        parser.add_argument("--task", choices=["classify", "segment"])
        parser.add_argument("--model-version", dest="model_version", help="version string, e.g. v2 or fed-7")
        parser.add_argument("--register", metavar="BUNDLE_JSON", help="register this bundle first")
        parser.add_argument("--source", choices=["centralised", "federated", "baseline"], default="centralised")
        parser.add_argument("--run-id", default=None, help="federated run id (with --source federated)")
        parser.add_argument("--candidate-only", action="store_true", help="register without promoting")
        parser.add_argument("--accept-lower-score", action="store_true",
                            help="promote even though it scored lower on validation than the active version")
        parser.add_argument("--list", action="store_true", help="list versions and exit")

    def handle(self, *args, **options):
        import json
        from pathlib import Path

        from diagnostics import registry
        from diagnostics.models.registry import ModelVersion

        if options["list"]:
            for version in ModelVersion.objects.order_by("task", "-created_at"):
                self.stdout.write(f"{version.task:9} {version.version:24} {version.status:9} {version.source:11} "
                                  f"{version.created_at:%Y-%m-%d %H:%M} {version.artifact_path}")
            return
        if not options["task"] or not (options["model_version"] or "").strip():
            raise CommandError("--task and --model-version are required")
        options["model_version"] = options["model_version"].strip()
        if options["candidate_only"] and not options["register"]:
            raise CommandError("--candidate-only registers a bundle without promoting it: give the bundle with "
                               "--register BUNDLE_JSON (without --register, a registered version is promoted)")
        for option, value, field in (("--model-version", options["model_version"], "version"),
                                     ("--run-id", options["run_id"], "federated_run_id")):
            limit = ModelVersion._meta.get_field(field).max_length
            if value is not None and len(value) > limit:
                raise CommandError(f"{option} is {len(value)} characters long; the registry keeps at most {limit}. "
                                   "Give a shorter one.")
        if options["register"]:
            bundle = Path(options["register"])
            try:
                info = json.loads(bundle.read_text())
            except OSError as error:
                raise CommandError(f"cannot read {bundle}: {error.strerror or error}") from error
            except ValueError as error:
                raise CommandError(f"{bundle} is not a model bundle: it is not valid JSON ({error})") from error
            bundle_task = info.get("task") if isinstance(info, dict) else None
            # Served under the wrong task, a bundle would make every scan fail when it is loaded.
            if bundle_task != options["task"]:
                raise CommandError(f"{bundle} is a {bundle_task or 'task-less'} bundle, not a {options['task']} one; "
                                   "give the matching --task or the right bundle file")
            if ModelVersion.objects.filter(task=options["task"], version=options["model_version"]).exists():
                raise CommandError(f"{options['task']} version {options['model_version']!r} is already registered; "
                                   "choose another --model-version (promote_model --list shows the versions)")
            problem = registry.serving_problem(options["task"], bundle.resolve())
            if problem:
                raise CommandError(f"{bundle} cannot serve scans ({problem}); nothing was registered. Give the "
                                   "bundle file that train_model or a federated run wrote, with its files beside it")
            try:
                version = registry.register_model_version(
                    task=options["task"], version=options["model_version"], artifact_path=str(bundle.resolve()),
                    metrics=info.get("validation_metrics", {}), source=options["source"],
                    federated_run_id=options["run_id"])
            except IntegrityError as error:  # registered by someone else since the check above
                raise CommandError(f"{options['task']} version {options['model_version']!r} is already "
                                   "registered; choose another --model-version") from error
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise CommandError(f"cannot register {bundle}: {error}") from error
            self.stdout.write(f"registered {version}")
            if options["candidate_only"]:
                return
        try:
            version = ModelVersion.objects.get(task=options["task"], version=options["model_version"])
        except ModelVersion.DoesNotExist as error:
            raise CommandError(f"no {options['task']} version {options['model_version']!r}") from error
        try:
            version = registry.promote_model_version(version, accept_lower_score=options["accept_lower_score"])
        except registry.ModelIntegrityError as error:
            raise CommandError(str(error)) from error
        except registry.ScoresBelowActive as lower:
            raise CommandError(f"{lower} Not promoted; add --accept-lower-score if that is meant.") from lower
        self.stdout.write(f"active: {version}")
