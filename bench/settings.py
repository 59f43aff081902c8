"""Settings for benchmark runs: the test settings (private temporary folder, SQLite), production timings."""

from tests.settings import *  # noqa: F403

# The test settings write the live row count every 0.5 s; production's default is 2 s.
COURIER_ROWCOUNT_SECONDS = 2.0
