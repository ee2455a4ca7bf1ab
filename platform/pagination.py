"""How the API's lists are paged: `limit` and `offset`, 50 rows unless asked, never more than MAX_LIMIT.

A hospital holds tens of thousands of scans and a long audit trail: without a ceiling one request with
?limit=1000000 would load and serialize a whole table. The ceiling leaves room for the worklist, whose
live reload asks again for every row already shown (ten pages of "Show more"); a larger limit is read
as MAX_LIMIT, and the answer's `next` link goes on from there.
"""

from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 500


class LimitOffsetWithCeiling(LimitOffsetPagination):
    max_limit = MAX_LIMIT
