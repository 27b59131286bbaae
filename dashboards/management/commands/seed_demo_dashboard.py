from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from dashboards.demo import create_demo_dashboard


class Command(BaseCommand):
    help = "Create (or recreate) the 'Home' demo dashboard of a user (default: demo)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--owner", default="demo")

    def handle(self, *args, **options) -> None:
        try:
            owner = User.objects.get(username=options["owner"])
        except User.DoesNotExist:
            raise CommandError(f"No user named {options['owner']!r}.") from None
        dashboard = create_demo_dashboard(owner)
        self.stdout.write(f"Dashboard {dashboard.name!r} (#{dashboard.pk}) with {dashboard.charts.count()} charts.")
