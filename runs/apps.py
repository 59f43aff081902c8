from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"

    def ready(self) -> None:
        # Late import: ready() is where Django wants signal receivers connected, once every model is loaded.
        from runs.firing import stamp_fire_time  # noqa: I001
        from django_q.signals import pre_enqueue

        # In every process that queues work, the scheduler's included: firings carry when they fired.
        pre_enqueue.connect(stamp_fire_time, dispatch_uid="courier-stamp-fire-time")
