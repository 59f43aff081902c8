#!/usr/bin/env bash
# Serve the admin on 127.0.0.1:8000 and run a django-q2 cluster beside it; Ctrl-C stops both.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
$PY manage.py qcluster &
cluster=$!
$PY manage.py runserver 127.0.0.1:8000 --noreload &
web=$!
stop() {
  trap - INT TERM EXIT
  # TERM, not INT: background jobs of a non-interactive shell ignore SIGINT,
  # so runserver would outlive Ctrl-C.
  kill -TERM "$web" "$cluster" 2>/dev/null
  wait "$web" "$cluster" 2>/dev/null
}
trap stop INT TERM EXIT
# Whichever stops first (or Ctrl-C) brings the other down too.
wait -n "$web" "$cluster"
