from django.core.management.base import BaseCommand

from portal.schedules import SCHEDULES, schedules_ensure


class Command(BaseCommand):
    help = "Create or update the recurring tasks (django-q2 schedules) the portal needs."

    def handle(self, *args, **options):
        created = schedules_ensure()
        self.stdout.write(f"{len(SCHEDULES)} schedules in place ({len(created)} new).")
