from __future__ import annotations

from http import HTTPStatus

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments import stripe_api, webhooks
from payments.models import StripeEvent


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's signed POST: 400 if not genuine, 500 if a handler failed (Stripe retries)."""
    try:
        event = stripe_api.verify_webhook(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except stripe_api.SignatureVerificationError:
        return JsonResponse({"error": "invalid signature"}, status=HTTPStatus.BAD_REQUEST)
    except ValueError:
        return JsonResponse({"error": "invalid payload"}, status=HTTPStatus.BAD_REQUEST)

    record = webhooks.stripe_event_process(record=webhooks.stripe_event_record(event=event))

    if record.status == StripeEvent.Status.FAILED:
        return JsonResponse({"status": record.status}, status=HTTPStatus.INTERNAL_SERVER_ERROR)
    return JsonResponse({"status": record.status})
