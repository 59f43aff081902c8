from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from runs import reaper

        # Every worker process of a cluster reaps in a side thread, never from the queue (runs/reaper.py).
        post_spawn.connect(reaper.start_in_worker, dispatch_uid="courier-reaper")
