from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("diagnostics", "0003_diagnosis_input_gate"),
    ]

    operations = [
        migrations.AddField(
            model_name="scan",
            name="doctor_outline",
            field=models.CharField(blank=True, choices=[("", "No correction"), ("drawn", "Drawn by a doctor"),
                                                        ("empty", "Erased by a doctor")], default="", max_length=8),
        ),
    ]
