"""Answers that carry patient details are never kept by a browser or a proxy.

A ward computer is shared: a page with a patient's name, an API answer with a record number, left in
the browser's cache, can be shown by the Back button or read from disk after its user signed out. So
every answer the application itself makes is marked ``no-store, private`` unless its view chose a
policy of its own; static assets, served before this (WhiteNoise), keep their long caching.
"""

from django.utils.cache import patch_cache_control


class NoStoreMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            patch_cache_control(response, no_store=True, private=True)
        return response
