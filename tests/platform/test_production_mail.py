"""Production never writes its mail to the log unless told to.

The console mail backend prints every message to the process's output, which is the log: invitation and
password-reset links that open an account, and patients' addresses. It suits development; a production
start that forgot EMAIL_BACKEND must not fall back on it.
"""

import os
import subprocess
import sys

from tests.platform.test_production_settings import KEY_VARIABLES, ROOT, master_key, production

PRINT_BACKEND = "from django.conf import settings; print(settings.EMAIL_BACKEND)"


def backend(tmp_path, **env) -> str:
    """The mail backend of a fresh start with this environment (none inherited from the test run)."""
    clean = {k: v for k, v in os.environ.items() if k not in (*KEY_VARIABLES, "EMAIL_BACKEND")}
    clean.update(DJANGO_SETTINGS_MODULE="neurofed.settings", NEUROFED_VAR_DIR=str(tmp_path / "var"), **env)
    result = subprocess.run([sys.executable, "-c", PRINT_BACKEND], capture_output=True, text=True, cwd=ROOT,
                            env=clean, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_production_without_an_email_backend_sends_by_smtp_rather_than_to_the_log(tmp_path):
    assert backend(tmp_path, **production(NEUROFED_MASTER_KEY=master_key())) == \
        "django.core.mail.backends.smtp.EmailBackend"


def test_development_still_prints_its_mail_and_a_backend_set_is_kept(tmp_path):
    assert backend(tmp_path, DEBUG="1") == "django.core.mail.backends.console.EmailBackend"
    chosen = "django.core.mail.backends.console.EmailBackend"
    assert backend(tmp_path, **production(NEUROFED_MASTER_KEY=master_key(), EMAIL_BACKEND=chosen)) == chosen
