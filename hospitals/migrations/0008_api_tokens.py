import hashlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def digest_the_tokens_in_clear(apps, schema_editor):
    """Every token DRF kept in clear becomes a digest here, so the clients holding one go on working, and
    the clear copies are deleted."""
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("hospitals", "ApiToken")
    for token in Token.objects.all():
        created = ApiToken.objects.create(user_id=token.user_id, digest=hashlib.sha256(token.key.encode()).hexdigest())
        ApiToken.objects.filter(pk=created.pk).update(created_at=token.created)
    Token.objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('hospitals', '0007_hospital_name_unique_any_case'),
        ('authtoken', '0004_alter_tokenproxy_options'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(max_length=64, unique=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        # The clear tokens are gone once digested, so going back cannot restore them: it drops the digests
        # with their table, and every API client signs in again.
        migrations.RunPython(digest_the_tokens_in_clear, migrations.RunPython.noop),
    ]
