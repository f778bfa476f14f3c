from django.http import HttpRequest, HttpResponse
from django.urls import include, path


def hello(request: HttpRequest) -> HttpResponse:
    """The trivial view the grid is measured against: same server, same middleware."""
    return HttpResponse("hello\n", content_type="text/plain")


urlpatterns = [
    path("bench/hello", hello),
    path("", include("amazin.urls")),
]
