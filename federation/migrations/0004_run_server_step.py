from django.db import migrations, models


class Migration(migrations.Migration):
    """Runs recorded before this option took the plain average (1.0); new runs default to the chosen step."""

    dependencies = [
        ('federation', '0003_run_logit_adjustment'),
    ]

    operations = [
        migrations.AddField(
            model_name='federatedrun',
            name='server_step',
            field=models.FloatField(default=1.0),
        ),
        migrations.AlterField(
            model_name='federatedrun',
            name='server_step',
            field=models.FloatField(default=1.5),
        ),
    ]
