#!/usr/bin/env bash
# Install the Debian packages Courier needs, when run as root and they are missing.
#   scripts/system-packages.sh run   - what `make run` needs (ODBC drivers, gpg, bubblewrap for the script sandbox)
#   scripts/system-packages.sh test  - plus the real servers the tests start (sshd, Samba, browser)
#   scripts/system-packages.sh bench - plus the native clients bench/transfers.py compares with (smbclient, curl)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

RUN_PACKAGES="unixodbc odbc-postgresql odbc-mariadb libsqliteodbc tdsodbc gnupg bubblewrap"
TEST_PACKAGES="$RUN_PACKAGES openssh-server samba openssl git chromium"
BENCH_PACKAGES="$TEST_PACKAGES smbclient curl"

wanted=${1:-run}
case "$wanted" in
  run) packages=$RUN_PACKAGES ;;
  test) packages=$TEST_PACKAGES ;;
  bench) packages=$BENCH_PACKAGES ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

missing=""
for pkg in $packages; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done

if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Missing system packages:$missing (run as root, or install them with apt-get)." >&2
    [ "$wanted" = run ] && exit 1
    echo "Tests that need them will be skipped." >&2
  else
    echo "Installing system packages:$missing"
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends --no-upgrade $missing >/dev/null
  fi
fi

# Debian's psqlodbc entries log every connection to /tmp unless switched off.
if [ "$(id -u)" = 0 ] && grep -q '^CommLog=1' /etc/odbcinst.ini 2>/dev/null; then
  sed -i 's/^CommLog=1/CommLog=0/' /etc/odbcinst.ini
fi
