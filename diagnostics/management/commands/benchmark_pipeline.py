"""Drive N concurrent uploads over HTTP against a running server and worker, and report.

    manage.py benchmark_pipeline --url http://127.0.0.1:8000 --hospital st-anne --doctor doctor@x \
        --count 32 --concurrency 8 --server-pid 1234 --worker-pid 5678

End-to-end latency is from the start of the upload request to the moment the hospital's worklist
websocket announces the scan done. Model-only latency is what the worker measured around the models
for the same scans (Diagnosis.timings). Peak resident memory is each process's VmHWM from /proc.

Every run uploads for a new patient record, so the per-patient dedupe never turns an upload into a
cache hit; images are distinct files of the shared training set.
"""

import json
import statistics
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from secrets import token_hex

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from tqdm import tqdm

from diagnostics.ml.readers import CLASS_NAMES
from hospitals.api_tokens import issue_token
from hospitals.models import Hospital, Membership, Role
from hospitals.services import create_patient


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def child_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def multipart_body(fields: dict, file_name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "neurofed-bench-" + token_hex(8)
    out = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
               f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


class Command(BaseCommand):
    help = "Measure end-to-end scan latency, throughput and memory against a running server and worker."

    def add_arguments(self, parser):
        parser.add_argument("--url", required=True, help="base URL of the running ASGI server")
        parser.add_argument("--hospital", required=True, help="hospital slug")
        parser.add_argument("--doctor", required=True, help="e-mail of a doctor of that hospital")
        parser.add_argument("--count", type=int, default=32)
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument("--server-pid", type=int, help="PID of the web process, for its peak memory")
        parser.add_argument("--worker-pid", type=int, help="PID of the Celery worker's main process")
        parser.add_argument("--timeout", type=float, default=600.0)
        parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")

    def handle(self, *args, **options):
        if options["count"] < 1 or options["concurrency"] < 1 or not options["timeout"] > 0:
            raise CommandError("--count and --concurrency must be at least 1, and --timeout above 0")
        hospital = Hospital.objects.filter(slug=options["hospital"]).first()
        if hospital is None:
            raise CommandError(f"No hospital with the slug {options['hospital']!r}.")
        user = get_user_model().objects.filter(email=options["doctor"]).first()
        if user is None or not Membership.objects.filter(
                hospital=hospital, user=user, role__in=[Role.DOCTOR, Role.ADMIN]).exists():
            raise CommandError(f"--doctor must name a doctor or admin of {hospital.slug}")
        base = options["url"].rstrip("/")
        self._check_server(base)  # before anything is written: the patient record, a token
        images = self._images(options["count"])
        patient = create_patient(hospital=hospital, full_name=f"Benchmark {time.strftime('%Y-%m-%d %H:%M:%S')}")
        self.stderr.write(f"uploading for the patient record {patient.pk} (\"{patient.full_name}\"), which keeps "
                          "the benchmark's scans")
        # A token of its own, taken back at the end: the doctor's own tokens are theirs to keep.
        token, secret = issue_token(user)
        try:
            self._run(options, hospital, user, patient, secret, base, images)
        finally:
            token.delete()

    @staticmethod
    def _check_server(base: str) -> None:
        if not base.startswith(("http://", "https://")):
            raise CommandError(f"--url {base!r} must start with http:// or https://, e.g. http://127.0.0.1:8000")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=10):
                pass
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise CommandError(f"no NeuroFed server answers at {base} ({reason}); start one, or give its --url")

    def _run(self, options, hospital, user, patient, token, base, images):

        done_at: dict[str, float] = {}
        done_event = threading.Condition()
        stop = threading.Event()
        listener = threading.Thread(target=self._listen, args=(base, hospital.slug, user, done_at, done_event, stop),
                                    daemon=True)
        listener.start()
        with done_event:
            done_event.wait(20)  # until the worklist socket is open

        def one(path: Path):
            body, content_type = multipart_body({"patient": str(patient.id)}, path.name, path.read_bytes())
            request = urllib.request.Request(f"{base}/api/v1/hospitals/{hospital.slug}/scans/", data=body, method="POST")
            request.add_header("Authorization", f"Token {token}")
            request.add_header("Content-Type", content_type)
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=120) as response:
                scan_id = json.loads(response.read())["id"]
            upload_s.append(time.perf_counter() - started)
            return scan_id, started

        upload_s: list[float] = []
        wall_start = time.perf_counter()
        with ThreadPoolExecutor(options["concurrency"]) as pool:
            uploads = list(pool.map(one, images))
        ids = {scan_id for scan_id, _ in uploads}
        deadline = time.monotonic() + options["timeout"]
        with tqdm(total=len(ids), desc="analysed", unit="scan", file=self.stderr._out,
                  disable=options["verbosity"] < 1) as bar, done_event:
            while not ids <= set(done_at) and time.monotonic() < deadline:
                done_event.wait(1.0)
                bar.update(len(ids & set(done_at)) - bar.n)
        stop.set()
        listener.join(5)
        missing = ids - set(done_at)
        if missing:
            raise CommandError(f"{len(missing)} scans did not finish within {options['timeout']}s")

        latencies = [done_at[scan_id] - started for scan_id, started in uploads]
        wall = max(done_at[i] for i in ids) - wall_start
        model_ms, statuses = [], {}
        for scan_id in ids:
            request = urllib.request.Request(f"{base}/api/v1/hospitals/{hospital.slug}/scans/{scan_id}/")
            request.add_header("Authorization", f"Token {token}")
            with urllib.request.urlopen(request, timeout=60) as response:
                detail = json.loads(response.read())
            statuses[detail["status"]] = statuses.get(detail["status"], 0) + 1
            if detail.get("result"):
                model_ms.append(detail["result"]["timings_ms"].get("model_ms", float("nan")) / 1000)

        figures = {
            "uploads": len(ids),
            "concurrency": options["concurrency"],
            "statuses": statuses,
            "end_to_end_p50_s": round(percentile(latencies, 50), 3),
            "end_to_end_p95_s": round(percentile(latencies, 95), 3),
            "end_to_end_mean_s": round(statistics.fmean(latencies), 3),
            "upload_response_p50_s": round(percentile(upload_s, 50), 3),
            "upload_response_p95_s": round(percentile(upload_s, 95), 3),
            "model_only_p50_s": round(percentile(model_ms, 50), 3),
            "model_only_p95_s": round(percentile(model_ms, 95), 3),
            "scans_per_minute": round(len(ids) / wall * 60, 1),
            "peak_rss_mb": self._memory(options),
        }
        if options["json"]:
            self.stdout.write(json.dumps(figures))
            return
        self.stdout.write(f"{len(ids)} uploads, {options['concurrency']} concurrent: {statuses}")
        self.stdout.write(f"end-to-end latency  p50 {figures['end_to_end_p50_s']:.3f} s   "
                          f"p95 {figures['end_to_end_p95_s']:.3f} s")
        self.stdout.write(f"upload response     p50 {figures['upload_response_p50_s']:.3f} s   "
                          f"p95 {figures['upload_response_p95_s']:.3f} s")
        self.stdout.write(f"model-only latency  p50 {figures['model_only_p50_s']:.3f} s   "
                          f"p95 {figures['model_only_p95_s']:.3f} s")
        self.stdout.write(f"throughput          {figures['scans_per_minute']:.1f} scans/minute")
        for name, megabytes in figures["peak_rss_mb"].items():
            self.stdout.write(f"peak RSS {name:<22} {megabytes:.0f} MB")

    @staticmethod
    def _images(count: int) -> list[Path]:
        root = Path(settings.NEUROFED_DATA_DIR) / "brain-tumor-mri" / "Training"
        per_class = [sorted((root / name).iterdir()) for name in CLASS_NAMES]
        if not all(per_class):
            raise CommandError(f"no training images under {root}")
        # Round-robin over the classes, from a random offset, so repeated runs use other files.
        offset = int(token_hex(2), 16)
        return [per_class[i % 4][(offset + i // 4) % len(per_class[i % 4])] for i in range(count)]

    @staticmethod
    def _listen(base, slug, user, done_at, condition, stop):
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        client = Client()
        client.force_login(user)
        url = base.replace("http", "ws", 1) + f"/ws/hospitals/{slug}/worklist/"
        headers = {"Cookie": f"sessionid={client.cookies['sessionid'].value}", "Origin": base}
        with connect(url, additional_headers=headers, open_timeout=20) as socket:
            with condition:
                condition.notify_all()
            while not stop.is_set():
                try:
                    raw = socket.recv(timeout=0.5)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    return
                message = json.loads(raw)
                if message.get("status") in ("done", "failed") and message.get("event") == "scan.status":
                    with condition:
                        done_at.setdefault(message["scan"], time.perf_counter())
                        condition.notify_all()

    @staticmethod
    def _memory(options) -> dict:
        result = {}
        if options.get("server_pid"):
            result["web"] = peak_rss_mb(options["server_pid"])
        if options.get("worker_pid"):
            result["worker (main)"] = peak_rss_mb(options["worker_pid"])
            for child in child_pids(options["worker_pid"]):
                result[f"worker (pool {child})"] = peak_rss_mb(child)
        import resource

        result["this benchmark client"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {name: round(value, 1) for name, value in result.items() if value is not None}
