"""`make demo` without DATABASE_URL runs on SQLite (platform/settings.py): every migration must apply there
too, PostgreSQL-only operations included, or the README's first command fails on a fresh machine."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings


def test_every_migration_applies_and_reverts_on_the_embedded_sqlite_database(tmp_path):
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}"}

    def manage(*arguments):
        return subprocess.run([sys.executable, "manage.py", *arguments], cwd=Path(settings.BASE_DIR),
                              env=environment, capture_output=True, text=True, timeout=300)

    for arguments in (("migrate", "--noinput"), ("migrate", "diagnostics", "0005", "--noinput"),
                      ("migrate", "--noinput")):
        done = manage(*arguments)
        assert done.returncode == 0, done.stderr[-3000:]
    assert "[X] 0006_blob_path_indexes" in manage("showmigrations", "diagnostics").stdout
    # The readiness checks that read the database read SQLite's too (the field key's did not parse there).
    checked = manage("shell", "-c", "from neurofed.health import run_check; print(run_check('field_key'))")
    assert "'status': 'ok'" in checked.stdout, checked.stdout + checked.stderr[-3000:]
