"""The benchmarks' baseline: a trivial view behind the same middleware as the API.

Mounted only when ``MABDASH_BENCH_ENDPOINTS=1`` (set by ``make bench``), never otherwise.
"""

from django.http import HttpRequest, JsonResponse


def noop(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})
