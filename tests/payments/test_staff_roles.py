"""Staff roles and orders as staff read them: the "Shop staff" group (made by a migration)
may see orders and products, set stock, ship and refund; the ship and refund views check
those rights; orders and the event log are read-only; Axes' records and the task queue's
results are for superusers only; the order list shows real orders unless asked."""

from __future__ import annotations

import re
from http import HTTPStatus
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from payments.models import BooksDifference, Dispute, Order, Refund, StripeEvent
from tests.factories import OrderFactory, OrderLineFactory, ProductFactory, UserFactory
from tests.support.staff import shop_staff_group, shop_staff_join

pytestmark = pytest.mark.django_db


def staff(*, group: bool) -> User:
    user = UserFactory.create(is_staff=True)
    if group:
        shop_staff_join(user)
    return user


@pytest.fixture
def order():
    order = OrderFactory(
        email="kim@example.com",
        status=Order.Status.PAID,
        amount_total=4800,
        paid_at=timezone.now(),
        stripe_payment_intent_id="pi_test_roles",
    )
    OrderLineFactory(
        order=order, product=ProductFactory(name="Teapot"), quantity=2, unit_amount=2400
    )
    return order


def test_the_shop_staff_group_has_the_shops_rights_and_no_more():
    group = shop_staff_group()

    codenames = set(group.permissions.values_list("content_type__app_label", "codename"))

    assert {
        ("payments", "view_order"),
        ("payments", "ship_order"),
        ("payments", "refund_order"),
        ("payments", "view_refund"),
        ("payments", "view_dispute"),
        ("payments", "view_booksdifference"),
        ("store", "view_product"),
        ("store", "change_product"),
    } <= codenames
    assert not {c for _, c in codenames if c.startswith(("delete_", "add_"))}
    assert ("payments", "change_order") not in codenames
    assert not {app for app, _ in codenames} - {"payments", "store"}


@pytest.mark.parametrize("action", ["ship", "refund"])
def test_staff_outside_the_group_may_not_ship_or_refund(client, order, action):
    client.force_login(staff(group=False))

    with mock.patch("payments.stripe_api.refund_create") as refund_create:
        shown = client.get(f"/admin/payments/order/{order.pk}/{action}/")
        sent = client.post(
            f"/admin/payments/order/{order.pk}/{action}/",
            {"request_token": "t", "everything": "on", "carrier": "UPS", "tracking_number": "1"},
        )

    assert (shown.status_code, sent.status_code) == (HTTPStatus.FORBIDDEN, HTTPStatus.FORBIDDEN)
    refund_create.assert_not_called()
    order.refresh_from_db()
    assert (order.shipped_at, order.refunds.count()) == (None, 0)


def test_shop_staff_may_ship_and_refund(client, order):
    client.force_login(staff(group=True))

    page = client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
    ship = client.get(f"/admin/payments/order/{order.pk}/ship/")
    refund = client.get(f"/admin/payments/order/{order.pk}/refund/")

    assert (ship.status_code, refund.status_code) == (HTTPStatus.OK, HTTPStatus.OK)
    assert "Mark shipped" in page and ">Refund<" in page


def test_the_order_page_offers_no_action_its_reader_may_not_take(client, order):
    viewer = staff(group=False)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_order"))
    client.force_login(viewer)

    page = client.get(f"/admin/payments/order/{order.pk}/change/")

    assert page.status_code == HTTPStatus.OK
    assert "Mark shipped" not in page.content.decode()
    assert ">Refund<" not in page.content.decode()


def viewer() -> User:
    """Staff who may see orders and nothing more."""
    from django.contrib.auth.models import Permission

    user = staff(group=False)
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    return user


@pytest.mark.parametrize("who", ["shop staff", "viewer"])
def test_whoever_sees_orders_may_look_again_at_stripe(client, order, who):
    # Orders are read-only (no change permission for anyone): the look is allowed by
    # payments.view_order, as it moves no money and writes only Stripe's word.
    client.force_login(staff(group=True) if who == "shop staff" else viewer())

    with mock.patch("payments.money_look.order_look_again", return_value=order) as look:
        page = client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
        response = client.post(f"/admin/payments/order/{order.pk}/look/")

    assert "Look again at Stripe" in page
    assert response.status_code == HTTPStatus.FOUND
    look.assert_called_once_with(order_id=order.pk)


def test_staff_who_may_not_see_orders_may_not_look_again(client, order):
    client.force_login(staff(group=False))

    with mock.patch("payments.money_look.order_look_again") as look:
        response = client.post(f"/admin/payments/order/{order.pk}/look/")

    assert response.status_code == HTTPStatus.FORBIDDEN
    look.assert_not_called()


def actions_offered(client) -> set[str]:
    html = client.get("/admin/payments/order/").content.decode()
    return set(re.findall(r'<option value="(\w+)">', html)) - {""}


def test_the_order_lists_actions_follow_the_readers_rights(client, order):
    Order.objects.filter(pk=order.pk).update(attention="Dispute opened")
    client.force_login(viewer())
    offered_to_viewer = actions_offered(client)
    client.post(
        "/admin/payments/order/",
        {"action": "attention_dealt_with", "_selected_action": [order.pk]},
    )
    order.refresh_from_db()
    still = order.attention

    client.force_login(staff(group=True))
    offered_to_staff = actions_offered(client)
    client.post(
        "/admin/payments/order/",
        {"action": "attention_dealt_with", "_selected_action": [order.pk]},
    )
    order.refresh_from_db()

    assert offered_to_viewer == {"look_again"}
    assert still == "Dispute opened"  # not theirs to mark dealt with
    assert offered_to_staff == {"look_again", "attention_dealt_with"}
    assert order.attention == ""


def money_records(order: Order) -> dict[str, int]:
    """One of each record of money the admin lists: {model name: pk}."""
    refund = Refund.objects.create(order=order, amount=100, currency="usd", status="failed")
    dispute = Dispute.objects.create(
        order=order, stripe_dispute_id="dp_roles", amount=4800, currency="usd", status="lost"
    )
    difference = BooksDifference.objects.create(
        key="amount_differs:ch_roles",
        kind=BooksDifference.Kind.AMOUNT_DIFFERS,
        stripe_id="ch_roles",
        order=order,
        shop_ref=f"order #{order.pk}",
        message="Amounts differ",
        object_created=timezone.now(),
        last_seen=timezone.now(),
    )
    return {"refund": refund.pk, "dispute": dispute.pk, "booksdifference": difference.pk}


def test_money_records_are_shop_staffs_to_read_and_nobodys_to_edit(client, admin_client, order):
    records = money_records(order)
    client.force_login(staff(group=False))
    outside = {m: client.get(f"/admin/payments/{m}/").status_code for m in records}
    client.force_login(staff(group=True))

    for model, pk in records.items():
        listed = client.get(f"/admin/payments/{model}/")
        page = client.get(f"/admin/payments/{model}/{pk}/change/").content.decode()
        edited = admin_client.post(f"/admin/payments/{model}/{pk}/change/", {})
        deleted = admin_client.get(f"/admin/payments/{model}/{pk}/delete/")

        assert listed.status_code == HTTPStatus.OK, model
        assert f"/admin/payments/order/{order.pk}/change/" in page, model
        assert 'name="_save"' not in page and "deletelink" not in page, model
        assert (edited.status_code, deleted.status_code) == (HTTPStatus.FORBIDDEN,) * 2, model
    assert set(outside.values()) == {HTTPStatus.FORBIDDEN}


@pytest.mark.parametrize(
    "path", ["/admin/axes/accessattempt/", "/admin/django_tasks_database/dbtaskresult/"]
)
def test_security_and_queue_records_are_for_superusers_only(client, admin_client, path):
    member = staff(group=True)
    from django.contrib.auth.models import Permission

    member.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    client.force_login(member)

    assert client.get(path).status_code == HTTPStatus.FORBIDDEN
    assert path not in client.get("/admin/").content.decode()
    assert admin_client.get(path).status_code == HTTPStatus.OK
    assert path in admin_client.get("/admin/").content.decode()


def test_orders_are_read_only_even_for_superusers(admin_client, order):
    page = admin_client.get(f"/admin/payments/order/{order.pk}/change/").content.decode()
    posted = admin_client.post(f"/admin/payments/order/{order.pk}/change/", {"email": "x@y.z"})
    delete = admin_client.get(f"/admin/payments/order/{order.pk}/delete/")

    assert 'name="_save"' not in page and "deletelink" not in page
    assert posted.status_code == HTTPStatus.FORBIDDEN
    assert delete.status_code == HTTPStatus.FORBIDDEN
    order.refresh_from_db()
    assert order.email == "kim@example.com"


def test_order_lines_say_how_many_were_refunded(admin_client, order):
    line = order.lines.get()
    Refund.objects.create(
        order=order, amount=2400, currency="usd", status="succeeded", lines={str(line.pk): 1}
    )
    Refund.objects.create(
        order=order, amount=2400, currency="usd", status="failed", lines={str(line.pk): 1}
    )

    response = admin_client.get(f"/admin/payments/order/{order.pk}/change/")

    html = " ".join(response.content.decode().split())
    assert '<th class="column-refunded">Refunded </th>' in html
    assert '<td class="field-refunded"> <p>1</p> </td>' in html


def test_the_event_log_is_read_only_and_its_payload_readable(client, admin_client):
    event = StripeEvent.objects.create(
        stripe_id="evt_readable",
        type="charge.refunded",
        stripe_created=1764000000,
        payload={"id": "evt_readable", "created": 1764000000, "data": {"object": {"amount": 5}}},
        status="failed",
    )
    viewer = staff(group=False)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_stripeevent"))
    client.force_login(viewer)

    page = admin_client.get(f"/admin/payments/stripeevent/{event.pk}/change/").content.decode()
    posted = admin_client.post(f"/admin/payments/stripeevent/{event.pk}/change/", {})
    staff_list = client.get("/admin/payments/stripeevent/").content.decode()
    admin_list = admin_client.get("/admin/payments/stripeevent/").content.decode()

    assert 'name="_save"' not in page and "deletelink" not in page
    assert posted.status_code == HTTPStatus.FORBIDDEN
    # Indented, each time followed by its date (PostgreSQL's jsonb keeps its own key order).
    assert '<pre class="json-payload">{\n  &quot;' in page
    assert "\n  &quot;id&quot;: &quot;evt_readable&quot;" in page
    assert re.search(r'1764000000,? <span class="json-time">2025-11-24 16:00:00 UTC</span>', page)
    assert "2025-11-24 16:00:00 UTC" in admin_list  # when Stripe sent it
    assert 'value="replay"' in admin_list and 'value="replay"' not in staff_list


# -- which orders the list shows --------------------------------------------------------


@pytest.fixture
def orders():
    return {
        status: OrderFactory(status=status, email=f"{status}@example.com")
        for status in Order.Status.values
    }


def shown(client, query: str = "") -> set[str]:
    response = client.get(f"/admin/payments/order/{query}")
    assert response.status_code == HTTPStatus.OK
    return {order.status for order in response.context["cl"].queryset}


def test_the_order_list_shows_real_orders_unless_asked(admin_client, orders):
    assert shown(admin_client) == {
        "paid",
        "processing",
        "partially_refunded",
        "refunded",
        "refund_pending",
    }
    assert shown(admin_client, "?shown=abandoned") == {"pending", "expired", "failed"}
    assert shown(admin_client, "?shown=all") == set(Order.Status.values)
    assert shown(admin_client, "?status__exact=expired") == {"expired"}
    assert shown(admin_client, "?q=failed@example.com") == {"failed"}
    assert shown(admin_client, f"?q=%23{orders['pending'].pk}") == {"pending"}
