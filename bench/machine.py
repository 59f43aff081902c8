"""What the figures were measured on: printed at the top of every benchmark."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def describe_machine() -> str:
    return (f"machine: {os.cpu_count()} CPUs ({cpu_model()}), {memory_gb():.1f} GB memory, "
            f"Python {platform.python_version()}, load average {load()} (1/5/15 min)")
