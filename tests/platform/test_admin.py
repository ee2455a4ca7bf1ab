"""The Django admin (platform/urls.py): the operator's tool, which must not hand out people's API tokens."""

import pytest
from rest_framework.authtoken.models import Token

from tests.factories import make_user


@pytest.fixture
def operator(db):
    return make_user("operator@neurofed.example", is_superuser=True, is_staff=True)


def test_the_operator_cannot_list_or_open_anyones_api_token(client, world, operator):
    token = Token.objects.create(user=world.doctor_a)
    client.force_login(operator)
    index = client.get("/admin/")
    assert index.status_code == 200 and "Users" in index.content.decode()
    assert "authtoken" not in index.content.decode() and "Tokens" not in index.content.decode()
    for url in ("/admin/authtoken/tokenproxy/", f"/admin/authtoken/tokenproxy/{world.doctor_a.pk}/change/",
                "/admin/authtoken/token/"):
        response = client.get(url, follow=True)
        assert token.key not in response.content.decode(), url
        assert response.status_code == 404, url
