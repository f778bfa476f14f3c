from django.contrib.sitemaps import views as sitemaps
from django.urls import path

from store import seo, views

app_name = "store"
urlpatterns = [
    path("", views.product_grid, name="grid"),
    path("category/<slug:slug>/", views.product_grid, name="category"),
    path("products/<int:pk>/", views.product_detail, name="detail"),
    # For search engines: an index of sitemaps (products run to 100,000 and more).
    path(
        "sitemap.xml",
        sitemaps.index,
        {"sitemaps": seo.SITEMAPS, "sitemap_url_name": "store:sitemap-section"},
        name="sitemap",
    ),
    path(
        "sitemap-<section>.xml",
        sitemaps.sitemap,
        {"sitemaps": seo.SITEMAPS},
        name="sitemap-section",
    ),
    path("robots.txt", seo.robots_txt, name="robots"),
    path("favicon.ico", seo.favicon, name="favicon"),
]
