from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"

    def ready(self) -> None:
        from django_q.signals import post_spawn, pre_enqueue

        # Late import: ready() is where Django wants signal receivers connected, once every model is loaded.
        from runs import firing, reaper, schedulerpoll

        # In every process that queues work, the scheduler's included: firings carry when they fired.
        pre_enqueue.connect(firing.stamp_fire_time, dispatch_uid="courier-stamp-fire-time")
        # Every worker process of a cluster reaps and watches in a side thread, never from the queue (runs/reaper.py).
        post_spawn.connect(reaper.start_in_worker, dispatch_uid="courier-reaper")
        # … and asks django-q2's scheduler every few seconds, not only every 30 s (runs/schedulerpoll.py).
        post_spawn.connect(schedulerpoll.start_in_worker, dispatch_uid="courier-scheduler-poll")
