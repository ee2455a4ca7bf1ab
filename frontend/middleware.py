"""Middleware of the pages."""

from frontend.views.base import render_page

API_PREFIX = "/api/"


class MethodNotAllowedPageMiddleware:
    """A page answer for an address opened in a way it does not take, e.g. typing or bookmarking the
    address of a button's form (require_POST, Django's LogoutView).

    Django answers those with an empty 405, which a browser shows as a broken page. The API answers its
    own 405s in JSON and is left alone; so is any 405 that already says something.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 405 or request.path.startswith(API_PREFIX) or response.content:
            return response
        page = render_page(request, "frontend/errors/button_address.html", status=405)
        if response.has_header("Allow"):
            page["Allow"] = response["Allow"]
        return page
