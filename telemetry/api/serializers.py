"""Response shapes of the telemetry endpoints, for the OpenAPI schema."""

from rest_framework import serializers

Value = serializers.JSONField(help_text="A number, boolean or text.")


class IngestRecordSerializer(serializers.Serializer):
    data = serializers.DictField(help_text="Measurement values: numbers, booleans, text; nested objects flatten.")
    metadata = serializers.DictField(required=False)
    timestamp = serializers.CharField(required=False, help_text="ISO 8601, 'YYYY-MM-DD HH:MM:SS', epoch s or ms.")


class IngestResultSerializer(serializers.Serializer):
    message = serializers.CharField()
    device_id = serializers.IntegerField()
    records = serializers.IntegerField()
    points = serializers.IntegerField()


class PointSerializer(serializers.Serializer):
    timestamp = serializers.CharField()
    measurement = serializers.CharField()
    value = serializers.JSONField()


class HistorySerializer(serializers.Serializer):
    device_id = serializers.IntegerField()
    device_name = serializers.CharField()
    start_time = serializers.CharField()
    end_time = serializers.CharField()
    fields = serializers.ListField(child=serializers.CharField(), allow_null=True)
    limit = serializers.IntegerField()
    order = serializers.ChoiceField(choices=["asc", "desc"])
    count = serializers.IntegerField()
    data = PointSerializer(many=True)


class LatestValueSerializer(serializers.Serializer):
    value = serializers.JSONField()
    timestamp = serializers.CharField()


class LatestSerializer(serializers.Serializer):
    device_id = serializers.IntegerField()
    device_name = serializers.CharField()
    timestamp = serializers.CharField(allow_null=True)
    data = serializers.DictField(child=LatestValueSerializer())


class BucketSerializer(serializers.Serializer):
    timestamp = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    count = serializers.IntegerField()


class AggregatedSerializer(serializers.Serializer):
    device_id = serializers.IntegerField()
    aggregation = serializers.CharField()
    window = serializers.CharField()
    start_time = serializers.CharField()
    end_time = serializers.CharField()
    series = serializers.DictField(child=BucketSerializer(many=True))


class DeletedSerializer(serializers.Serializer):
    message = serializers.CharField()
    device_id = serializers.IntegerField()
    deleted = serializers.IntegerField()


class TelemetryStatusSerializer(serializers.Serializer):
    status = serializers.CharField()
    backend = serializers.DictField()
    max_points_per_request = serializers.IntegerField()
    timestamp = serializers.CharField()
