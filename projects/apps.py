from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"

    def ready(self) -> None:
        # Connects the receivers that keep django-q2 schedules in step with project triggers.
        from projects import scheduling  # noqa: F401
