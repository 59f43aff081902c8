from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        # Late import: ready() is where Django wants signal receivers connected, once every model is loaded;
        # every worker process of a cluster then reaps in a side thread, never from the queue (runs/reaper.py).
        from runs import reaper

        post_spawn.connect(reaper.start_in_worker, dispatch_uid="courier-reaper")
