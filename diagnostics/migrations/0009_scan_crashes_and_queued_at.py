"""A scan's crashes are counted per scan, not inferred per task (services.start_analysis), and a failed scan
queued again keeps when it was (services.stalled_scans). Columns with constant defaults: no rewrite."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('diagnostics', '0008_keyed_blob_digests'),
    ]

    operations = [
        migrations.AddField(
            model_name='scan',
            name='crashes',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='scan',
            name='queued_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='scan',
            name='started_retries',
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
    ]
