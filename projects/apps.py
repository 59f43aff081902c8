from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"

    def ready(self) -> None:
        # Late import: ready() is where Django wants signal receivers connected, once every model is loaded;
        # these keep django-q2 schedules in step with project triggers.
        from projects import scheduling  # noqa: F401
