#!/usr/bin/env bash
# Serve the admin on 127.0.0.1:$COURIER_PORT (8000 unless set, here or in .env) and run a
# django-q2 cluster beside it; Ctrl-C stops both.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# The port as settings.py reads it: from the environment, else from .env, else 8000.
PORT=$(DJANGO_SETTINGS_MODULE=etlsite.settings $PY -c 'from django.conf import settings; print(settings.COURIER_PORT)') || exit 2
# With DEBUG off (the default) WhiteNoise serves the static files from STATIC_ROOT.
$PY manage.py collectstatic --noinput -v0 || exit 2
$PY manage.py qcluster &
cluster=$!
$PY manage.py runserver "127.0.0.1:$PORT" --noreload &
web=$!
stop() {
  trap - INT TERM EXIT
  # TERM, not INT: background jobs of a non-interactive shell ignore SIGINT,
  # so runserver would outlive Ctrl-C.
  kill -TERM "$web" "$cluster" 2>/dev/null
  wait "$web" "$cluster" 2>/dev/null
}
trap stop INT TERM EXIT
echo "Courier: http://127.0.0.1:$PORT/"
# Whichever stops first (or Ctrl-C) brings the other down too.
wait -n "$web" "$cluster"
