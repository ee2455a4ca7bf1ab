"""Diagnose scan files from the command line with the active (or a given) model.

    manage.py predict scan1.jpg scan2.dcm [--json] [--mask-dir DIR] [--model-dir DIR]

Per file: the label, the calibrated probabilities and, when a tumour is found, its area and bounding
box. A file with several slices (DICOM series, NIfTI volume) is summarised by its most suspicious slice
(the one with the lowest no-tumour probability), whose index is reported: ``slice`` (0-based) of
``slices``, as the file numbers them (a NIfTI volume along its stored axial axis, blank slices counted,
though only slices with content are diagnosed). ``--json`` prints one JSON
object per line with ``file``, ``label``, ``probabilities`` and the extras (``unusual_image`` is the
input gate's flag, diagnostics/ml/gate.py); a file that cannot be read, or is no brain MRI
(``not_brain_mri``, as an upload would be refused), gives a line with ``error`` and ``detail`` and the
command exits with status 1 at the end.
``--mask-dir DIR`` writes each file's tumour mask as ``DIR/<file name>.png`` (0 or 255, input size); two
files with the same name (``a/x.png``, ``b/x.png``) are refused up front, since their masks would
overwrite each other, and so is a mask that would overwrite one of the input files, or a folder that
cannot be written to. A mask is written whole or not at all: a mask of an earlier run stays as it was
when writing the new one fails. A file that fails at any step is reported and the others are still
diagnosed.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from neurofed.files import publish, staged

# Limits for files given on the command line; uploads have their own, stricter ones.
MAX_PIXELS = 8192 * 8192
MAX_FRAMES = 2048


def most_suspicious(predictions) -> int:
    return int(np.argmin([p.probabilities.get("notumor", 0.0) for p in predictions]))


def shown(path: str) -> str:
    """A file name as a terminal can print it: one that is not valid UTF-8 (Python holds its bytes as
    surrogates) shows them as \\x escapes instead of stopping the output."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class MaskNotWritten(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


def write_mask(mask: np.ndarray, target: Path) -> None:
    """The mask as a 0/255 PNG at `target`, whole or not at all (neurofed.files)."""
    from PIL import Image

    with staged(target.parent, "mask") as staging:
        with open(staging / target.name, "wb") as handle:
            Image.fromarray(mask.astype(np.uint8) * 255).save(handle, format="PNG")
        publish(staging, target.parent)


class Command(BaseCommand):
    help = "Classify, segment and explain MRI scan files (JPEG, PNG, DICOM, NIfTI)."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")
        parser.add_argument("--mask-dir", default=None, help="write <file name>.png tumour masks here")
        parser.add_argument("--model-dir", default=None,
                            help="use the bundles in this folder instead of the registry's active versions")
        parser.add_argument("--backend", choices=["auto", "tflite", "keras"], default="auto")

    def handle(self, *args, **options):
        from diagnostics import services
        from diagnostics.ml.readers import ScanDecodeError, decode_scan

        mask_dir = Path(options["mask_dir"]) if options["mask_dir"] else None
        if mask_dir:
            self._refuse_shared_mask_names(options["paths"])
            self._refuse_masks_over_inputs(options["paths"], mask_dir)
        predictor, version_names = self._predictor(options)
        if mask_dir:
            self._prepare_mask_dir(mask_dir)
        failures = 0
        for raw_path in options["paths"]:
            path = Path(raw_path)
            try:
                if path.is_dir():
                    raise ScanDecodeError("unreadable", "This is a folder; give the scan files in it.")
                if not path.is_file():
                    raise ScanDecodeError("unreadable", "No such file.")
                try:
                    data = path.read_bytes()
                except OSError as error:
                    raise ScanDecodeError("unreadable", f"Cannot be read ({error.strerror or error}).") from None
                scan = decode_scan(data, max_pixels=MAX_PIXELS, max_frames=MAX_FRAMES)
                # The same input gate as an upload: the classifier would name a class for any picture.
                services.refuse_what_is_no_brain_mri(scan)
                record = self._diagnose(predictor, scan, path, mask_dir)
            except (ScanDecodeError, services.UploadRejected, MaskNotWritten) as error:
                failures += 1
                self._emit_error(options["json"], raw_path, error.code, error.detail)
                continue
            except Exception as error:  # one bad file must not cost the rest of the batch its answers
                failures += 1
                self._emit_error(options["json"], raw_path, "prediction_failed",
                                 f"Could not be diagnosed ({type(error).__name__}: {error}).")
                continue
            record = {"file": raw_path, **record, "model_versions": version_names}
            if options["json"]:
                self.stdout.write(json.dumps(record))
            else:
                self.stdout.write(self._human({**record, "file": shown(raw_path)}))
        if failures:
            raise CommandError(f"{failures} of {len(options['paths'])} files could not be diagnosed")

    @staticmethod
    def _refuse_shared_mask_names(paths) -> None:
        by_name = {}
        for raw_path in paths:
            by_name.setdefault(Path(raw_path).name, []).append(raw_path)
        shared = [files for files in by_name.values() if len(files) > 1]
        if shared:
            raise CommandError(f"{' and '.join(shared[0])} would write their masks to the same file "
                               f"<mask dir>/{Path(shared[0][0]).name}.png; run them in separate batches with "
                               "separate --mask-dir folders")

    @staticmethod
    def _refuse_masks_over_inputs(paths, mask_dir: Path) -> None:
        inputs = {Path(raw_path).resolve() for raw_path in paths}
        for raw_path in paths:
            target = (mask_dir / f"{Path(raw_path).name}.png").resolve()
            if target in inputs:
                raise CommandError(f"the mask of {shown(raw_path)} would overwrite the input file "
                                   f"{shown(str(target))}; give --mask-dir a folder that holds none of the inputs")

    @staticmethod
    def _prepare_mask_dir(mask_dir: Path) -> None:
        """The folder exists and takes a file, before any scan is diagnosed: found out per mask, every
        diagnosis of the batch would be lost to it."""
        if mask_dir.exists() and not mask_dir.is_dir():
            raise CommandError(f"--mask-dir {shown(str(mask_dir))} is a file; give a folder to write the masks in")
        try:
            mask_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=mask_dir, prefix=".write-check-"):
                pass
        except OSError as error:
            raise CommandError(f"cannot write masks in {shown(str(mask_dir))}: {error.strerror or error}; pass "
                               "--mask-dir a folder you can write to") from error

    @staticmethod
    def _predictor(options):
        """The predictor and the registry versions it serves; a missing or unusable model is a CommandError."""
        from diagnostics.ml.inference import Predictor

        if options["model_dir"]:
            model_dir = Path(options["model_dir"])
            if not (model_dir / "classifier.json").is_file():
                raise CommandError(f"no classifier bundle (classifier.json) in {model_dir}; pass the folder that "
                                   "train_model wrote, or leave --model-dir out to use the registry's active model")
            try:
                return Predictor.from_model_dir(model_dir, backend=options["backend"]), {}
            except (OSError, ValueError, KeyError) as error:
                raise CommandError(f"the bundles in {model_dir} cannot be loaded: {error}") from error
        from diagnostics.registry import ModelIntegrityError, NoActiveModel, load_active_predictor

        try:
            predictor = load_active_predictor(backend=options["backend"])
        except NoActiveModel as error:
            raise CommandError(f"{error}; register one with promote_model or pass --model-dir") from error
        except ModelIntegrityError as error:
            raise CommandError(f"{error}; promote another version or roll back with rollback_model") from error
        except (OSError, ValueError, KeyError) as error:
            raise CommandError(f"the active model cannot be loaded ({type(error).__name__}: {error}); promote "
                               "another version or roll back with rollback_model") from error
        return predictor, {task: v.version for task, v in predictor.model_versions.items() if v is not None}

    @staticmethod
    def _diagnose(predictor, scan, path: Path, mask_dir: Path | None) -> dict:
        from diagnostics import services

        predictions = predictor.predict_batch(scan.slices, scan.pixel_spacing_mm)
        chosen = most_suspicious(predictions)
        prediction = predictions[chosen]
        verdict = services.gate_verdict(scan.slices[chosen])
        if mask_dir:
            target = mask_dir / f"{path.name}.png"
            try:
                write_mask(prediction.mask, target)
            except OSError as error:
                raise MaskNotWritten("mask_not_written", f"Its mask could not be written to {shown(str(target))} "
                                                         f"({error.strerror or error}).") from error
        return {**prediction.summary(), "slice": scan.slice_number(chosen),
                "slices": scan.slices_in_file or len(predictions), "kind": scan.kind,
                "unusual_image": verdict.unusual, "input_distance": round(verdict.distance, 1)}

    def _emit_error(self, as_json: bool, path: str, code: str, detail: str) -> None:
        if as_json:
            self.stdout.write(json.dumps({"file": path, "error": code, "detail": detail}))
        else:
            self.stderr.write(f"{shown(path)}: {code}: {detail}")

    @staticmethod
    def _human(record: dict) -> str:
        probabilities = ", ".join(f"{name} {p:.3f}" for name, p in
                                  sorted(record["probabilities"].items(), key=lambda item: -item[1]))
        line = f"{record['file']}: {record['label']} ({probabilities})"
        if record["slices"] > 1:
            line += f" [slice {record['slice'] + 1} of {record['slices']}]"
        if record["tumour_found"]:
            box = record["bbox"]
            area = f"{record['tumour_area_px']} px"
            if record["tumour_area_mm2"] is not None:
                area += f", {record['tumour_area_mm2']:.1f} mm²"
            line += (f"; tumour area {area}; box top={box['top']} left={box['left']} "
                     f"height={box['height']} width={box['width']}")
        else:
            line += "; no tumour outlined"
        if record["unusual_image"]:
            line += "; UNUSUAL IMAGE: unlike the brain MRIs the models learnt from, so this reading may mean nothing"
        return line
