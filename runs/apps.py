from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"

    def ready(self) -> None:
        from django_q.signals import pre_enqueue

        from runs.firing import stamp_fire_time

        # In every process that queues work, the scheduler's included: firings carry when they fired.
        pre_enqueue.connect(stamp_fire_time, dispatch_uid="courier-stamp-fire-time")
