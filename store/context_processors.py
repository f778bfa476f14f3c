from django.http import HttpRequest

from store import seo


def page_meta(request: HttpRequest) -> dict[str, str]:
    """Every page's canonical URL (its path on SITE_URL); a view may give its own."""
    return seo.page_meta(request)
