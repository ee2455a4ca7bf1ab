"""Rotation of FIELD_ENCRYPTION_KEY: every encrypted column of every installed app, not one table's.

The key encrypts patients' PHI, doctors' review notes, identifiers read from DICOM headers and the free
text of audit entries. A rotation that missed any of them would leave tokens that only the old key opens,
and dropping that key afterwards would turn them into unreadable text for good. So the columns are found
from the model registry (any field of django-encrypted-model-fields), and this module needs no import of
the apps that own them.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models.functions import Cast
from encrypted_model_fields import fields as encrypted_fields

from hospitals.errors import DomainError


@dataclass(frozen=True)
class EncryptedTable:
    model: type[models.Model]
    field_names: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.model._meta.verbose_name_plural


@dataclass
class ReencryptionReport:
    rows_by_table: dict[str, int] = field(default_factory=dict)
    # Rows with a token the newest key did not open before: a rotation always finds some, so none
    # while several keys are configured means the newest key is not first (see reencrypt_phi).
    rows_under_older_key: int = 0

    @property
    def rows(self) -> int:
        return sum(self.rows_by_table.values())


def encrypted_tables() -> Iterator[EncryptedTable]:
    """Each concrete model with encrypted columns, in a stable order (app label, then model name)."""
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label_lower):
        if model._meta.proxy or not model._meta.managed:
            continue
        names = tuple(f.name for f in model._meta.concrete_fields if isinstance(f, encrypted_fields.EncryptedMixin))
        if names:
            yield EncryptedTable(model, names)


def rows_to_reencrypt() -> int:
    return sum(table.model._base_manager.count() for table in encrypted_tables())


# Rows re-encrypted per transaction: the audit trail alone can hold millions, and a transaction per
# row would make a rotation take hours; a few hundred keep each lock short.
BATCH_ROWS = 500


def reencrypt_fields(
    *, progress: Callable[[EncryptedTable, int], None] | None = None, batch_rows: int = BATCH_ROWS
) -> ReencryptionReport:
    """Re-encrypt every encrypted column under the newest FIELD_ENCRYPTION_KEY (MultiFernet.rotate).

    Works on the stored tokens, not on decrypted model fields: the field library hands back the raw
    token when no key opens it, and saving that would encrypt ciphertext. A token no configured key
    opens stops the rotation with an error naming the row, before anything of its batch is written.
    One transaction per batch of rows, so an interrupted run keeps what it did, and a rerun is
    harmless: a token already under the newest key is encrypted under it again. `progress` is called
    after each batch with the number of rows it held.
    """
    report = ReencryptionReport()
    for table in encrypted_tables():
        report.rows_by_table[table.label] = 0
        last_pk = None
        while True:
            done, older, last_pk = _reencrypt_batch(table, after=last_pk, size=batch_rows)
            if not done:
                break
            report.rows_by_table[table.label] += done
            report.rows_under_older_key += older
            if progress is not None:
                progress(table, done)
    return report


def newest_field_key():
    """The Fernet of the first FIELD_ENCRYPTION_KEY, the one MultiFernet.rotate encrypts under."""
    configured = settings.FIELD_ENCRYPTION_KEY
    return encrypted_fields.parse_key(configured[0] if isinstance(configured, (list, tuple)) else configured)


def field_key_count() -> int:
    configured = settings.FIELD_ENCRYPTION_KEY
    return len(configured) if isinstance(configured, (list, tuple)) else 1


def _under_newest_key(newest, token: str | None) -> bool:
    from cryptography.fernet import InvalidToken

    if token is None:
        return True
    try:
        newest.extract_timestamp(token.encode())  # checks the token's HMAC under this key only
    except InvalidToken:
        return False
    return True


def _reencrypt_batch(table: EncryptedTable, *, after, size: int) -> tuple[int, int, object]:
    """Rotate the tokens of up to `size` rows whose key follows `after`; returns how many, how many of them
    had a token under an older key, and the last key."""
    from cryptography.fernet import InvalidToken

    model = table.model
    # Cast to text: the column as stored, past the field's decrypting converter.
    stored = {f"stored_{name}": Cast(name, output_field=models.TextField()) for name in table.field_names}
    rows = model._base_manager.order_by("pk")
    if after is not None:
        rows = rows.filter(pk__gt=after)
    with transaction.atomic():
        batch = list(rows.select_for_update().annotate(**stored).values_list("pk", *stored)[:size])
        if not batch:
            return 0, 0, after
        newest = newest_field_key()
        updates, older = [], 0
        for pk, *tokens in batch:
            older += not all(_under_newest_key(newest, token) for token in tokens)
            try:
                rotated = [None if token is None else encrypted_fields.CRYPTER.rotate(token.encode()).decode()
                           for token in tokens]
            except InvalidToken:
                raise DomainError(
                    "unknown_field_key",
                    f"{model._meta.verbose_name} {pk} has a column no configured FIELD_ENCRYPTION_KEY opens; "
                    "add the old key.",
                ) from None
            updates.append([*rotated, model._meta.pk.get_db_prep_value(pk, connection)])
        # Raw UPDATE: the field library encrypts whatever the ORM hands it, expressions included, and an
        # append-only model (the audit log) refuses saves; a rotation changes no content.
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(model._meta.get_field(name).column)} = %s" for name in table.field_names)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(model._meta.pk.column)} = %s",
                updates,
            )
    return len(batch), older, batch[-1][0]
