"""The alert rule form of the alert pages."""

import math

from django import forms
from django.core.exceptions import ValidationError

from devices.api.permissions import devices_visible_to
from devices.models import DeviceGroup

from .models import AlertRule


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = ["name", "device", "group", "measurement", "operator", "threshold", "severity", "cooldown", "enabled"]
        labels = {"cooldown": "Cooldown (seconds)"}
        help_texts = {"device": "Watch one device…", "group": "…or every device of a group."}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["device"].queryset = devices_visible_to(user).order_by("name")
        groups = DeviceGroup.objects.all() if user.is_staff else DeviceGroup.objects.filter(owner=user)
        self.fields["group"].queryset = groups

    def clean_threshold(self) -> float:
        value = self.cleaned_data["threshold"]
        if not math.isfinite(value):
            raise ValidationError("The threshold must be a finite number.")
        return value

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("device")) == bool(data.get("group")):
            raise ValidationError("Choose either a device or a group.")
        return data
