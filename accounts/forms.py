"""Forms of the account pages: sign-up, profile (time zone, muted notifications) and tokens."""

from django import forms
from django.contrib.auth.forms import UserCreationForm

from notifications.models import NotificationKind

from .models import User


class SignUpForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ["username", "email", "time_zone"]


class ProfileForm(forms.ModelForm):
    muted_notification_kinds = forms.MultipleChoiceField(
        choices=NotificationKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Muted notifications",
        help_text="Kinds of notification you do not want: they are neither shown nor kept.",
    )

    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "time_zone", "muted_notification_kinds"]
        help_texts = {"time_zone": "Every time on every page is shown in this zone."}

    def clean_muted_notification_kinds(self) -> list[str]:
        return sorted(set(self.cleaned_data["muted_notification_kinds"]))


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="What the token is for, e.g. “backup script”.")
