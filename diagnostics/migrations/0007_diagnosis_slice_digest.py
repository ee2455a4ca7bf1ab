from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("diagnostics", "0006_blob_path_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="diagnosis",
            name="slice_digest",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
