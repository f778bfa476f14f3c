from django.urls import path

from payments import views

app_name = "payments"
urlpatterns = [
    path("stripe/webhook/", views.stripe_webhook, name="webhook"),
    path("checkout/", views.checkout, name="checkout"),
    path("checkout/success/", views.checkout_success, name="success"),
    path("checkout/cancel/", views.checkout_cancel, name="cancel"),
    path("orders/", views.order_list, name="orders"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("orders/status/<str:token>/", views.order_status, name="order_status"),
]
