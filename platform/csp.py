"""A Content-Security-Policy and a Permissions-Policy on every answer: the second line behind escaping.

Pages show patients' names, record numbers and scans. Should an escaping mistake ever let markup into a
page, the browser still runs only the scripts and styles this site serves as files: no inline
``<script>``, no ``onclick=``, no ``style="..."``, no ``javascript:`` link. And a page talks to this
site alone, so even a script that got in has nowhere to send what it reads. The UI is written for
this: its behaviour lives in frontend/static/frontend/js/, its looks in app.css, and JavaScript sets
styles through ``element.style`` (which the policy allows) rather than in HTML strings.

Set on static files too (this runs before WhiteNoise): an SVG opened on its own is a document that could
hold a script.
"""

from django.conf import settings
from django.core.exceptions import DisallowedHost
from rest_framework.renderers import BrowsableAPIRenderer

# Images may also be data: and blob: URLs, the forms a canvas's picture takes (the viewer draws the
# outline on one), and Swagger UI's icons are data: URLs in its stylesheet. An image runs no script.
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: blob:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    # A <base> tag slipped into a page would point every relative script URL at another site.
    "base-uri": "'none'",
    "form-action": "'self'",
    # As X-Frame-Options DENY: no other site frames a page to trick a click.
    "frame-ancestors": "'none'",
}

# Browser features no page here uses, refused outright, also to any frame an injected tag could open.
# Only features Chromium knows: it warns of an unknown name in the console of every page.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "fullscreen",
    "geolocation", "gyroscope", "magnetometer", "microphone", "midi", "payment", "picture-in-picture",
    "publickey-credentials-get", "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
))


def websocket_origin(request) -> str:
    """The origin live.js opens its socket on: this host, over wss: on an https page and ws: otherwise.

    CSP Level 3 lets 'self' cover it (Chromium since 71, Safari since 16), but a browser older than that
    would refuse the socket and the live updates would silently stop; named explicitly, it works there too.
    """
    try:
        host = request.get_host()
    except DisallowedHost:
        return ""  # the answer is the refusal of this host: no page, no socket
    return f"{'wss' if request.is_secure() else 'ws'}://{host}"


def content_security_policy(request, response) -> str:
    policy = dict(POLICY)
    if isinstance(getattr(response, "accepted_renderer", None), BrowsableAPIRenderer):
        # DRF's browsable API lays its pages out with style="..." attributes and a <style> block, in
        # templates of DRF's own. Styles only, never scripts: CSS cannot run code, and what it could load
        # (a background image, a font) still comes from this site alone.
        policy["style-src"] += " 'unsafe-inline'"
    socket = websocket_origin(request)
    if socket:
        policy["connect-src"] += f" {socket}"
    if settings.CSP_REPORT_URI:
        policy["report-uri"] = settings.CSP_REPORT_URI
    return "; ".join(f"{directive} {sources}" for directive, sources in policy.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["Content-Security-Policy"] = content_security_policy(request, response)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
