"""Forms of the device pages: devices, groups, configuration entries, commands, list filters,
schedules and overrides."""

import copy
import json
import re

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db.models import Q

from accounts.models import TIME_ZONE_CHOICES

from .models import Device, DeviceGroup, Health, Schedule
from .schedules import validation_errors

STATUS_FILTERS = [
    ("", "Any status"),
    (Health.ONLINE, "Online"),
    (Health.STALE, "Stale"),
    (Health.OFFLINE, "Offline"),
    (Health.NEVER_SEEN, "Never seen"),
    (Device.Status.MAINTENANCE, "In maintenance"),
    (Device.Status.INACTIVE, "Inactive"),
]


class JSONTextField(forms.CharField):
    """A JSON value typed as text; plain words that are not JSON are taken as strings."""

    def __init__(self, *args, object_only: bool = False, **kwargs):
        self.object_only = object_only
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return {} if self.object_only else None
        try:
            parsed = json.loads(text)
        except ValueError:
            if self.object_only:
                raise ValidationError('Enter a JSON object, e.g. {"speed": 3}.') from None
            return text
        if self.object_only and not isinstance(parsed, dict):
            raise ValidationError('Enter a JSON object, e.g. {"speed": 3}.')
        return parsed

    def prepare_value(self, value):
        if isinstance(value, str) and not self.object_only:
            return value
        return json.dumps(value) if value not in (None, "") else ""


class DeviceForm(forms.ModelForm):
    groups = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Device
        fields = [
            "name",
            "device_type",
            "description",
            "location",
            "firmware_version",
            "hardware_version",
            "expected_interval",
            "groups",
        ]
        labels = {"device_type": "Type", "expected_interval": "Expected interval (seconds)"}
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["groups"].queryset = DeviceGroup.objects.filter(owner=owner)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Device.objects.filter(owner=self.owner, name=name).exclude(pk=self.instance.pk).exists():
            raise ValidationError("You already have a device with this name.")
        return name


class DeviceEditForm(DeviceForm):
    class Meta(DeviceForm.Meta):
        fields = [*DeviceForm.Meta.fields, "status"]


class ConfigurationEntryForm(forms.Form):
    key = forms.CharField(max_length=100)
    value = JSONTextField(required=False, help_text='JSON (e.g. 30, true, "eco", {"a": 1}); empty removes the key.')


class CommandForm(forms.Form):
    action = forms.CharField(max_length=100, help_text="For example turn_on, turn_off, set_fan_speed.")
    params = JSONTextField(
        required=False, object_only=True, label="Parameters", help_text='JSON object, e.g. {"speed": 3}.'
    )


class GroupForm(forms.ModelForm):
    devices = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = DeviceGroup
        fields = ["name", "description", "devices"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["devices"].queryset = Device.objects.filter(owner=owner).order_by("name")
        if self.instance.pk:
            self.initial["devices"] = list(self.instance.devices.values_list("pk", flat=True))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if DeviceGroup.objects.filter(owner=self.owner, name=name).exclude(pk=self.instance.pk).exists():
            raise ValidationError("You already have a group with this name.")
        return name

    def save(self, commit: bool = True) -> DeviceGroup:
        group = super().save(commit=False)
        group.owner = self.owner
        group.save()
        group.devices.set(self.cleaned_data["devices"])
        return group


class DeviceFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, location, type"}),
    )
    group = forms.ModelChoiceField(queryset=None, required=False, empty_label="Any group")
    type = forms.ChoiceField(required=False, label="Type")
    status = forms.ChoiceField(choices=STATUS_FILTERS, required=False)

    def __init__(self, *args, devices, groups, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = groups
        types = devices.order_by("device_type").values_list("device_type", flat=True).distinct()
        self.fields["type"].choices = [("", "Any type"), *((t, t) for t in types)]

    def filter(self, devices):
        if not self.is_valid():
            return devices
        data = self.cleaned_data
        if data["q"]:
            q = data["q"]
            devices = devices.filter(Q(name__icontains=q) | Q(location__icontains=q) | Q(device_type__icontains=q))
        if data["group"]:
            devices = devices.filter(groups=data["group"])
        if data["type"]:
            devices = devices.filter(device_type=data["type"])
        status = data["status"]
        if status in Health.values:
            devices = devices.filter(health=status)
        elif status:
            devices = devices.filter(status=status)
        return devices


PARAM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
PARAMS_HELP = "key=value pairs or a JSON object, e.g. power=on, fan_speed=3."


def parse_params(text: str) -> dict:
    """``power=on, fan_speed=3`` (commas, semicolons or new lines between pairs) as a dict.

    A value that reads as a JSON scalar keeps its type (3, 2.5, true, null, "3"); anything else is a string.
    """
    params = {}
    for pair in filter(None, (piece.strip() for piece in re.split(r"[,;\n]", text))):
        key, sep, raw = (part.strip() for part in pair.partition("="))
        if not sep or not PARAM_KEY.match(key):
            raise ValidationError(f"“{pair}” is not a key=value pair; {PARAMS_HELP}")
        params[key] = _scalar(raw)
    return params


def _scalar(raw: str):
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return raw if isinstance(value, dict | list) else value


def format_params(params: dict) -> str:
    """The way people type parameters: key=value pairs, or JSON when the pairs would not read back the same."""
    pairs = []
    for key, value in params.items():
        text = value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, str) and _scalar(value) != value:
            text = json.dumps(value)  # "3" stays a string; a bare 3 would read back as a number
        pairs.append(f"{key}={text}")
    shown = ", ".join(pairs)
    try:
        if parse_params(shown) == params:
            return shown
    except ValidationError:
        pass
    return json.dumps(params)


class ParamsField(forms.CharField):
    """Command parameters typed as key=value pairs or as a JSON object."""

    def to_python(self, value) -> dict:
        text = super().to_python(value).strip()
        if not text:
            return {}
        if not text.startswith("{"):
            return parse_params(text)
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ValidationError(f"This is not valid JSON; {PARAMS_HELP}") from None
        if not isinstance(parsed, dict):
            raise ValidationError(f"Give a JSON object; {PARAMS_HELP}")
        return parsed

    def prepare_value(self, value):
        return format_params(value) if isinstance(value, dict) else value


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%H:%M")


WEEKDAY_CHOICES = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]


class ScheduleForm(forms.Form):
    """A device's schedule, checked by the same rules as the API and the admin (``schedules.validation_errors``).

    A plain form rather than a ModelForm: the schedule rules need every field at once, and run only
    when each field is valid on its own (an overlap check of a missing time means nothing).
    """

    name = forms.CharField(max_length=100)
    days = forms.TypedMultipleChoiceField(
        choices=WEEKDAY_CHOICES,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Give one or more days of the week."},
    )
    start_time = forms.TimeField(widget=TimeInput, label="Start")
    end_time = forms.TimeField(
        widget=TimeInput, label="End", help_text="Earlier than the start: the span ends the next day."
    )
    start_params = ParamsField(required=False, label="Parameters at the start", help_text=PARAMS_HELP)
    start_action = forms.CharField(
        max_length=100,
        initial="set_state",
        label="Command at the start",
        validators=[RegexValidator(r"^[A-Za-z][A-Za-z0-9_.:-]*$", "A command name such as set_state or turn_on.")],
        help_text="set_state applies the parameters.",
    )
    end_action = forms.ChoiceField(choices=Schedule.EndAction.choices, label="At the end")
    time_zone = forms.ChoiceField(required=False, label="Time zone")
    enabled = forms.BooleanField(required=False, initial=True)

    FIELDS = ("name", "days", "start_time", "end_time", "start_params", "start_action", "end_action", "time_zone")

    def __init__(self, *args, device: Device, instance: Schedule | None = None, **kwargs):
        self.device = device
        self.instance = instance
        if instance is not None:
            kwargs.setdefault("initial", {name: getattr(instance, name) for name in (*self.FIELDS, "enabled")})
        super().__init__(*args, **kwargs)
        own_zone = device.owner.time_zone or "UTC"
        self.fields["time_zone"].choices = [("", f"The owner's time zone ({own_zone})"), *TIME_ZONE_CHOICES]

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        errors = schedule_errors(self._apply(self._candidate(), data))
        for name, messages in errors.items():
            self.add_error(name if name in self.fields else None, messages)
        return data

    def _candidate(self) -> Schedule:
        return copy.copy(self.instance) if self.instance is not None else Schedule(device=self.device)

    def _apply(self, schedule: Schedule, data: dict) -> Schedule:
        for name in (*self.FIELDS, "enabled"):
            setattr(schedule, name, data[name])
        schedule.days = sorted(set(data["days"]))
        return schedule

    def save(self) -> Schedule:
        schedule = self.instance if self.instance is not None else Schedule(device=self.device)
        schedule = self._apply(schedule, self.cleaned_data)
        schedule.save()
        return schedule


def schedule_errors(schedule: Schedule) -> dict[str | None, list[str]]:
    """The schedule rules' errors keyed for ``Form.add_error`` (None: the form as a whole)."""
    errors = validation_errors(schedule).items()
    return {None if name == NON_FIELD_ERRORS else name: messages for name, messages in errors}


class OverrideForm(forms.Form):
    params = ParamsField(
        label="Parameters",
        help_text=PARAMS_HELP,
        error_messages={"required": "Give the parameters to apply, e.g. fan_speed=5."},
        widget=forms.TextInput(attrs={"placeholder": "fan_speed=5, power=on"}),
    )
    duration_minutes = forms.IntegerField(min_value=1, initial=10, label="Duration (minutes)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit = settings.OVERRIDE_MAX_MINUTES  # read per form, so a changed setting applies at once
        field = self.fields["duration_minutes"]
        field.validators.append(MaxValueValidator(limit, f"At most {limit} minutes."))
        field.widget.attrs["max"] = limit
