"""The admin's date formats, as Courier's pages write them (etlsite/times.py): 2026-11-29 11:20 UTC.

Django reads these before its own English formats (FORMAT_MODULE_PATH); the input
formats are not set here, so the admin's date fields still take what they took.
"""

DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
