"""Celery tasks of the diagnostics queue (routed by platform/celery.py).

Retry-safe by construction: the task takes a scan id, returns at once when the scan is finished, runs
the models with no transaction open, and stores the result under a row lock with a one-to-one
Diagnosis, so a task redelivered after its worker died (acks_late + reject_on_worker_lost) finishes the
scan exactly once.
"""

import logging
import threading

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_init, worker_process_init
from celery.worker import state as worker_state
from celery.worker.request import Request
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from diagnostics import services
from hospitals.crypto import DecryptionError

logger = logging.getLogger(__name__)

# Failures worth another try: the database, the broker or the channel layer blinked.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, BrokerError, RedisConnectionError, RedisTimeoutError,
                    ConnectionError, TimeoutError)
MAX_RETRIES = 5
# Past the soft limit the task is interrupted and fails its scan with a reason; the hard limit, a
# little later, ends a worker process stuck where the interruption cannot reach (inside a native call),
# and the worker's main process then fails the scan the same way (AnalysisRequest).
ANALYSIS_HARD_LIMIT_GRACE_S = 30


def _interrupted_by_time_limit(error: BaseException) -> bool:
    """Whether the soft time limit is what raised ``error``, though a decoder or a loader caught it and
    raised its own error (a decoder answers "unreadable" to whatever it meets, this included)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, SoftTimeLimitExceeded):
            return True
        seen.add(id(error))
        error = error.__cause__ if error.__cause__ is not None else error.__context__
    return False


def _timed_out(scan_id, after_s) -> str:
    # Not retried: the same file would most likely hang again and hold the worker as long.
    logger.error("scan %s: analysis stopped after %s s", scan_id, after_s)
    services.fail_scan(scan_id, "timed_out", "The analysis took too long and was stopped; the team has been "
                                             "told, and the scan can be uploaded again later.")
    return "failed"


def _removed_meanwhile(scan_id) -> str:
    """A scan removed while its analysis ran: no fault and nothing to record (services.remove_scan)."""
    logger.info("scan %s was removed during its analysis; nothing recorded", scan_id)
    return "removed"


class AnalysisRequest(Request):
    """The worker's main process's view of one analysis, which outlives the pool process running it.

    A pool process stuck inside a native call never sees the soft time limit; at the hard limit the main
    process ends it and acknowledges the message, and nothing in the pool process is left to fail its
    scan, which would then read "processing" until requeue_scans ran, and be analysed, and hang, again.
    """

    def on_timeout(self, soft, timeout):
        super().on_timeout(soft, timeout)
        # A cold shutdown ends running tasks the same way: that scan is not at fault, and requeue_scans
        # schedules it again.
        if soft or worker_state.should_terminate:
            return
        scan_id = self.args[0] if self.args else self.kwargs.get("scan_id")
        close_old_connections()  # the main process's connection may have sat idle since the last limit
        try:
            _timed_out(scan_id, timeout)
        except Exception:
            # The event loop must go on; the scan is left to requeue_scans.
            logger.exception("scan %s: could not be failed after its hard time limit", scan_id)
        finally:
            connection.close()


@shared_task(
    bind=True,
    Request=AnalysisRequest,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    max_retries=MAX_RETRIES,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    # Time limits: stamped on each message by services.enqueue_analysis, from the settings at the time,
    # and kept by retries and redeliveries.
)
def analyse_scan(self, scan_id: str) -> str:
    from diagnostics import analysis  # worker-side only: it loads TensorFlow

    try:
        try:
            # Inside the try: a failure to start ends in a retry or a failed scan, never a scan left queued.
            scan = services.start_analysis(scan_id, retries=self.request.retries)
            if scan is None:
                logger.info("scan %s finished, or given up; nothing to do", scan_id)
                return "already-finished"
            logger.info("scan %s: analysis started (attempt %d)", scan_id, scan.attempts)
            result = analysis.analyse(scan)
            services.record_diagnosis(scan_id, result)
        except Exception as error:
            # A decoder or a loader that caught the interruption raised its own error ("unreadable"):
            # the time limit stopped the analysis, not the file, and the patient must not read otherwise.
            if not isinstance(error, SoftTimeLimitExceeded) and _interrupted_by_time_limit(error):
                raise SoftTimeLimitExceeded() from error
            raise
    except services.ScanGone:
        return _removed_meanwhile(scan_id)
    except SoftTimeLimitExceeded:
        soft_limit = (self.request.timelimit or (None, None))[1]  # the message's, as the queue stamped it
        return _timed_out(scan_id, soft_limit or settings.ANALYSIS_TIME_LIMIT_S)
    except services.UploadRejected as rejected:
        services.fail_scan(scan_id, rejected.code, rejected.detail)
        return "failed"
    except DecryptionError:
        if not services.scan_exists(scan_id):  # its file went with it
            return _removed_meanwhile(scan_id)
        services.fail_scan(scan_id, "unreadable_blob",
                           "The stored scan could not be opened; the hospital's IT team can check it.")
        return "failed"
    except TRANSIENT_ERRORS:
        if self.request.retries >= MAX_RETRIES:
            services.fail_scan(scan_id, "unavailable", "A service the analysis needs stayed unavailable; upload again.")
            return "failed"
        logger.warning("scan %s: transient error, will retry", scan_id, exc_info=True)
        raise
    except services.InputGateUnavailable as missing:
        # Like a missing model: a deployment fault, not the scan's, and nothing to retry against.
        logger.error("scan %s: %s", scan_id, missing)
        services.fail_scan(scan_id, "gate_unavailable", "The scan could not be checked at the moment; the team has "
                                                        "been told, and the scan can be uploaded again later.")
        return "failed"
    except analysis.NoActiveModel as missing:
        # Not retried forever: without a promoted model there is nothing to wait for. The registry's
        # reason (a checksum mismatch, a missing bundle) is for the team, not for a patient.
        logger.error("scan %s: no usable model: %s", scan_id, missing)
        services.fail_scan(scan_id, "no_model", "No diagnosis model is available at the moment; the team has "
                                                "been told, and the scan can be uploaded again later.")
        return "failed"
    except analysis.InvalidModelOutput:
        logger.error("scan %s: the active models returned an invalid result", scan_id)
        services.fail_scan(scan_id, "model_error",
                           "The software could not produce a valid result for this scan; upload another image of it.")
        return "failed"
    except Exception:
        if not services.scan_exists(scan_id):
            return _removed_meanwhile(scan_id)
        logger.exception("scan %s: analysis failed", scan_id)
        services.fail_scan(scan_id, "analysis_error", "The analysis failed unexpectedly; the team has been told.")
        return "failed"
    logger.info("scan %s: done", scan_id)
    return "done"


# The queue platform/celery.py routes this module's tasks to.
DIAGNOSTICS_QUEUE = "diagnostics"
# Whether this worker takes scans: set in the worker's main process before its pool starts, and so
# inherited by every pool process. True where no worker set it, as before there was a choice.
_worker_analyses_scans = True


@worker_init.connect
def _note_whether_worker_analyses_scans(sender, **kwargs):
    """Remember whether this worker consumes the diagnostics queue (its -Q, or every queue without one).

    At worker_init the queues are chosen and no pool process exists yet, whatever the pool: a solo
    pool's only process is created next, a prefork pool's are forked later.
    """
    global _worker_analyses_scans
    _worker_analyses_scans = DIAGNOSTICS_QUEUE in sender.app.amqp.queues.consume_from
    if not _worker_analyses_scans:
        logger.info("worker %s does not take the %s queue: its processes will not load the diagnosis models",
                    sender.hostname, DIAGNOSTICS_QUEUE)


@worker_process_init.connect
def _load_models_in_background(**kwargs):
    """Load the active models as soon as a worker process starts, so the first scan does not wait.

    Only in a worker that takes scans: a federation worker's processes would each hold the models
    (hundreds of MB) and never use them.

    In a thread: Celery gives a new pool process only a few seconds to report that it is up, and
    importing TensorFlow and building the models takes longer than that.
    """
    if not _worker_analyses_scans:
        return
    from diagnostics import analysis

    threading.Thread(target=analysis.warm_up, name="load-models", daemon=True).start()
