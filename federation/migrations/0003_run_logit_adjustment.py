from django.db import migrations, models


class Migration(migrations.Migration):
    """Runs recorded before this option trained without it: they get False, new runs default to True."""

    dependencies = [
        ('federation', '0002_run_learning_rate'),
    ]

    operations = [
        migrations.AddField(
            model_name='federatedrun',
            name='logit_adjustment',
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name='federatedrun',
            name='logit_adjustment',
            field=models.BooleanField(default=True),
        ),
    ]
