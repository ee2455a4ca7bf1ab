import django.db.models.deletion
from django.db import migrations, models

# The ORM already refuses to update or delete an audit event; on PostgreSQL the database refuses too,
# so neither a raw query in some future view nor a bulk ORM path can quietly rewrite the trail.
APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION hospitals_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER hospitals_auditevent_append_only
    BEFORE UPDATE OR DELETE ON hospitals_auditevent
    FOR EACH ROW EXECUTE FUNCTION hospitals_auditevent_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS hospitals_auditevent_append_only ON hospitals_auditevent;
DROP FUNCTION IF EXISTS hospitals_auditevent_append_only();
"""


def make_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL)


def drop_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):

    dependencies = [
        ("hospitals", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="detail",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.AddField(
            model_name="invitation",
            name="patient",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="invitations",
                to="hospitals.patient",
            ),
        ),
        migrations.RunPython(make_append_only, drop_append_only),
    ]
