from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken, User


class Command(BaseCommand):
    help = "Issue a personal API token for a user; the token is printed once, as the last line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A label to recognise the token by.")

    def handle(self, *args, **options) -> None:
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(f"No user named {options['username']!r}.") from None
        token, raw = ApiToken.issue(user, name=options["name"])
        self.stdout.write(f"Token {token.token_prefix}… issued for {user.username}; it is shown only now.")
        self.stdout.write(raw)
