"""Account pages. Django's auth views keep their own names (login, logout, password_change)."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

account_pages = [
    path("signup/", views.signup, name="signup"),
    path("profile/", views.profile, name="profile"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke", views.revoke_token, name="revoke-token"),
]

auth_pages = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
]

urlpatterns = [path("", include(auth_pages)), path("", include((account_pages, "accounts")))]
