"""manage.py load_demo: the demo organization, connections, project and tasks (safe to run again)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tasks.demo import load_demo


class Command(BaseCommand):
    help = "Load the demo data set: a SQLite warehouse over ODBC, a local outbox folder, a project with two tasks."

    def handle(self, **options):
        project = load_demo()
        names = ", ".join(f"“{project.name}/{t.name}”" for t in project.tasks.order_by("rank", "name"))
        self.stdout.write(f"Demo loaded: project “{project.name}” with tasks {names}.")
        self.stdout.write(f'Try: python manage.py run_task "{project.name}/orders" --wait')
