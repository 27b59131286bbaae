"""Forms of the device pages: devices, groups, configuration entries, commands and list filters."""

import json

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from .models import Device, DeviceGroup, Health

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
