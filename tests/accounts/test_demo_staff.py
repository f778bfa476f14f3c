from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tests.support.staff import shop_staff_group

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _group():
    shop_staff_group()  # migration payments.0013's, whatever ran before


def run_demo_staff(capsys) -> tuple[str, str]:
    call_command("demo_staff")
    email, password = capsys.readouterr().out.split()
    return email, password


def test_demo_staff_can_log_in_to_the_admin_with_what_it_prints(settings, capsys):
    settings.DEBUG = True

    email, password = run_demo_staff(capsys)

    user = User.objects.get(username=email)
    assert user.check_password(password)
    assert (user.is_staff, user.is_superuser, user.is_active) == (True, False, True)
    assert list(user.groups.values_list("name", flat=True)) == ["Shop staff"]
    assert user.has_perm("payments.refund_order") and user.has_perm("store.change_product")
    assert not user.has_perm("payments.change_stripeevent")


def test_each_run_resets_the_password(settings, capsys):
    settings.DEBUG = True
    email, first = run_demo_staff(capsys)

    _, second = run_demo_staff(capsys)

    assert first != second
    user = User.objects.get(username=email)
    assert not user.check_password(first)
    assert user.check_password(second)


def test_demo_staff_refuses_outside_development(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError):
        call_command("demo_staff")

    assert not User.objects.exists()


def test_demo_staff_works_in_the_admin_as_shop_staff(settings, capsys, client):
    settings.DEBUG = True
    email, password = run_demo_staff(capsys)
    client.post("/admin/login/", {"username": email, "password": password})

    home = client.get("/admin/")
    axes = client.get("/admin/axes/accessattempt/")
    orders = client.get("/admin/payments/order/")

    assert home.status_code == HTTPStatus.OK
    assert orders.status_code == HTTPStatus.OK
    assert axes.status_code == HTTPStatus.FORBIDDEN
