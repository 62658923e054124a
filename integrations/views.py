"""The shops' webhook endpoint: thin, the intake service does the work."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.intake import webhook_receive


@csrf_exempt  # WooCommerce signs its deliveries with the shop's secret instead
@require_POST
def woocommerce_webhook(request: HttpRequest, token) -> JsonResponse:
    headers = {name.lower(): value for name, value in request.headers.items()}
    answer = webhook_receive(token=str(token), headers=headers, body=request.body)
    return JsonResponse({"message": answer.message}, status=answer.status)
