"""DRF authentication for people: personal tokens and the v1 admin token header."""

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiToken, User, hash_secret

LAST_USED_RESOLUTION = timedelta(minutes=1)


def user_for_token(raw: str) -> tuple[User, ApiToken]:
    try:
        token = ApiToken.objects.select_related("user").get(token_hash=hash_secret(raw), revoked_at__isnull=True)
    except ApiToken.DoesNotExist:
        raise exceptions.AuthenticationFailed("Invalid or revoked token.") from None
    if not token.user.is_active:
        raise exceptions.AuthenticationFailed("User inactive or deleted.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user, token


class _HeaderTokenAuthentication(authentication.BaseAuthentication):
    keyword = ""

    def authenticate(self, request: Request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(f"Invalid header: use 'Authorization: {self.keyword} <token>'.")
        try:
            raw = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token characters.") from None
        return self.check(*user_for_token(raw))

    def check(self, user: User, token: ApiToken):
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class TokenAuthentication(_HeaderTokenAuthentication):
    """``Authorization: Token <personal token>``."""

    keyword = "Token"


class AdminTokenAuthentication(_HeaderTokenAuthentication):
    """``Authorization: admin <token>``: a staff user's personal token (the v1 admin header)."""

    keyword = "admin"

    def check(self, user: User, token: ApiToken):
        if not user.is_staff:
            raise exceptions.PermissionDenied("Admin API requires a staff user's token.")
        return user, token
