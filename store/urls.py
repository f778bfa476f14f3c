from django.urls import path

from store import views

app_name = "store"
urlpatterns = [
    path("", views.product_grid, name="grid"),
    path("category/<slug:slug>/", views.product_grid, name="category"),
    path("products/<int:pk>/", views.product_detail, name="detail"),
]
