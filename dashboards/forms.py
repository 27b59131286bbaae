"""Forms of the dashboard pages: dashboards, the chart builder, and chart-data queries."""

from django import forms
from django.core.exceptions import ValidationError

from devices.api.permissions import devices_visible_to
from telemetry.points import AGGREGATIONS

from .models import Chart, Dashboard
from .ranges import RANGE_CHOICES, TimeRange
from .series import measurements_of

WINDOW_CHOICES = [
    ("", "Automatic (fits the range)"),
    ("10s", "10 seconds"),
    ("1m", "1 minute"),
    ("5m", "5 minutes"),
    ("15m", "15 minutes"),
    ("1h", "1 hour"),
    ("6h", "6 hours"),
    ("1d", "1 day"),
]
WIDTH_CHOICES = [(1, "Quarter width"), (2, "Half width"), (3, "Three quarters"), (4, "Full width")]
MAX_DEVICES_FOR_SUGGESTIONS = 50
DATETIME_WIDGET = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class DashboardForm(forms.ModelForm):
    class Meta:
        model = Dashboard
        fields = ["name"]

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = Dashboard.objects.filter(owner=self.owner, name=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError("You already have a dashboard with this name.")
        return name


def measurement_choices(devices) -> list[tuple[str, str]]:
    names: set[str] = set()
    for device in devices[:MAX_DEVICES_FOR_SUGGESTIONS]:
        names.update(measurements_of(device.pk))
    return [(name, name) for name in sorted(names)]


class ChartForm(forms.ModelForm):
    """The chart builder. Measurements offered are those the chosen devices reported."""

    devices = forms.ModelMultipleChoiceField(queryset=None, widget=forms.CheckboxSelectMultiple)
    measurements = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    time_range = forms.ChoiceField(choices=RANGE_CHOICES, initial="24h", label="Time range")
    window = forms.ChoiceField(choices=WINDOW_CHOICES, required=False, label="Aggregation window")
    width = forms.TypedChoiceField(choices=WIDTH_CHOICES, coerce=int, initial=2)
    start_at = forms.DateTimeField(required=False, widget=DATETIME_WIDGET, label="From")
    end_at = forms.DateTimeField(required=False, widget=DATETIME_WIDGET, label="To")

    class Meta:
        model = Chart
        fields = [
            "title",
            "chart_type",
            "devices",
            "measurements",
            "time_range",
            "start_at",
            "end_at",
            "aggregation",
            "window",
            "width",
            "height",
            "position",
            "min_value",
            "max_value",
        ]
        labels = {"chart_type": "Type", "min_value": "Scale minimum", "max_value": "Scale maximum"}
        help_texts = {"position": "Charts are laid out by position, lowest first."}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        visible = devices_visible_to(user).order_by("name")
        self.fields["devices"].queryset = visible
        self.fields["measurements"].choices = measurement_choices(self.chosen_devices(visible) or visible)
        if self.instance.pk and not self.instance.time_range:
            self.initial["time_range"] = "custom"
        self.fields["position"].required = False

    def chosen_devices(self, visible) -> list:
        if self.is_bound:
            ids = [i for i in self.data.getlist(self.add_prefix("devices")) if str(i).isdigit()]
            return list(visible.filter(pk__in=ids))
        if self.instance.pk:
            return list(self.instance.devices.all())
        return []

    def clean_time_range(self) -> str:
        value = self.cleaned_data["time_range"]
        return "" if value == "custom" else value

    def clean(self) -> dict:
        data = super().clean()
        if data.get("time_range") == "" and not (data.get("start_at") and data.get("end_at")):
            self.add_error("start_at", "A custom range needs a start and an end.")
        elif data.get("time_range") == "" and data["start_at"] >= data["end_at"]:
            self.add_error("end_at", "The end must be after the start.")
        low, high = data.get("min_value"), data.get("max_value")
        if low is not None and high is not None and low >= high:
            self.add_error("max_value", "The maximum must be above the minimum.")
        if data.get("position") is None:
            data["position"] = self.instance.position or 0
        return data


class RangeForm(forms.Form):
    """A time range as pages ask for it: ``range=24h``, or ``range=custom`` with ``start`` and ``end``."""

    range = forms.ChoiceField(choices=RANGE_CHOICES, required=False, initial="24h")
    start = forms.DateTimeField(required=False, widget=DATETIME_WIDGET, label="From")
    end = forms.DateTimeField(required=False, widget=DATETIME_WIDGET, label="To")

    default_range = "24h"

    def clean(self) -> dict:
        data = super().clean()
        spec = data.get("range") or self.default_range
        if spec != "custom":
            data["time_range"] = TimeRange.last(spec)
        elif data.get("start") and data.get("end") and data["start"] < data["end"]:
            data["time_range"] = TimeRange.between(data["start"], data["end"])
        else:
            raise ValidationError("A custom range needs a start before its end.")
        return data

    def time_range(self) -> TimeRange:
        """The range asked for, or the default one when the form is empty or invalid."""
        if self.is_valid():
            return self.cleaned_data["time_range"]
        return TimeRange.last(self.default_range)


class SeriesQueryForm(RangeForm):
    """Chart data for any devices and measurements: the range plus ``aggregation`` and ``window``."""

    aggregation = forms.ChoiceField(choices=[(a, a) for a in AGGREGATIONS], required=False)
    window = forms.ChoiceField(choices=WINDOW_CHOICES, required=False)

    def clean(self) -> dict:
        data = super().clean()
        data["aggregation"] = data.get("aggregation") or "mean"
        return data
