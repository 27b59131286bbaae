"""Operators manage people and their personal API tokens here."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from .models import ApiToken, User

admin.site.site_header = "IoTFlow administration"
admin.site.site_title = "IoTFlow administration"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Preferences", {"fields": ("time_zone",)}))
    add_fieldsets = (*DjangoUserAdmin.add_fieldsets, ("Preferences", {"classes": ("wide",), "fields": ("time_zone",)}))
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "time_zone", "last_login")


class ActiveFilter(admin.SimpleListFilter):
    title = "active"
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", "Active"), ("no", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued here like anywhere else: the clear token is shown once, only its hash is kept."""

    list_display = ("token_prefix", "user", "name", "created_at", "last_used_at", "active")
    list_filter = (ActiveFilter, "created_at", "last_used_at", "user__is_staff")
    search_fields = ("user__username", "user__email", "name", "token_prefix")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    actions = ("revoke_tokens",)
    add_fields = ("user", "name")
    fields = ("user", "name", "token_prefix", "active", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("token_prefix", "active", "created_at", "last_used_at", "revoked_at")

    @admin.display(boolean=True, description="active", ordering="revoked_at")
    def active(self, token: ApiToken) -> bool:
        return token.is_active

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else (*self.readonly_fields, "user")

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, raw = ApiToken.issue(obj.user, obj.name)
        for field in ApiToken._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        obj._state = token._state
        messages.warning(
            request,
            format_html(
                "New API token for {}: <code>{}</code> Copy it now: it is not shown again.",
                obj.user,
                raw,
            ),
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token.revoke()
            self.log_change(request, token, "Revoked the token.")
            revoked += 1
        self.message_user(request, f"Revoked {revoked} token{'s' if revoked != 1 else ''}.", messages.SUCCESS)
