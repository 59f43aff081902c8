"""A site whose processes are real: `manage.py` commands, helper steps and `qcluster` processes in subprocesses.

tests/test_cluster.py (PostgreSQL + Redis) and tests/test_cluster_embedded.py
(SQLite + the ORM broker) each describe a site with its own settings module
in `env`; everything here is the same for both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The settings of the sites' processes log this way (tests/settings_pg.py, tests/settings_embedded.py).
CLUSTER_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}


@dataclass
class ClusterSite:
    env: dict
    var: Path
    clusters: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)
    # The module of the site's helper steps, run as `python -m <helper> STEP ARGS…`.
    helper: str = "tests.cluster_helper"

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        # --skip-checks: the system checks are tested elsewhere and cost a second per process.
        return subprocess.run([sys.executable, "manage.py", *args, "--skip-checks"], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def step(self, *args: str) -> dict:
        done = subprocess.run([sys.executable, "-m", self.helper, *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start_cluster(self, name: str = "", **env: str) -> subprocess.Popen:
        """A cluster, as on a machine of its own; `env` adds to the site's environment (that machine's own folders)."""
        log = self.var / f"cluster-{name or len(self.clusters)}.log"
        with open(log, "wb") as out:
            # A session of its own: the whole cluster (sentinel, workers) can be ended by its group id.
            proc = subprocess.Popen([sys.executable, "manage.py", "qcluster", "--skip-checks"], cwd=ROOT, env={**self.env, **env},
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.clusters.append((proc, log))
        return proc

    def stop_clusters(self, timeout: float = 30) -> None:
        """SIGTERM each cluster (a clean stop); what is left of its group after `timeout` (a worker busy with a long run) is killed."""
        for proc, _ in self.clusters:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for _, log in self.clusters)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 45) -> object:
    """Poll until `condition` returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"gave up waiting {timeout:.0f} s for {what}")
