import json

from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods

from .models import Note


@require_http_methods(["GET", "POST"])
def notes(request):
    if request.method == "POST":
        note = Note.objects.create(text=json.loads(request.body)["text"])
        return JsonResponse({"id": note.id}, status=201)
    texts = Note.objects.order_by("id").values_list("text", flat=True)
    return JsonResponse({"notes": list(texts)})


@require_GET
def healthz(request):
    """Healthy once both of PgBouncer's pools accept the app's login."""
    for alias in connections:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    return HttpResponse("ok")
