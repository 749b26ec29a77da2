from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from apps.tenants.selectors import slug_availability


class SlugAvailabilityApi(APIView):
    """Live check of an organisation address while a visitor types it at sign-up."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [AnonRateThrottle]

    class InputSerializer(serializers.Serializer):
        slug = serializers.CharField(allow_blank=True, max_length=100)

    class OutputSerializer(serializers.Serializer):
        slug = serializers.CharField()
        available = serializers.BooleanField()
        message = serializers.CharField()

    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        result = slug_availability(slug=params.validated_data["slug"])
        return Response(self.OutputSerializer(result).data)
