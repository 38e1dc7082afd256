#!/usr/bin/env bash
# Installs what `make test` needs, at pinned versions, and only what is
# missing: a second run takes seconds. Binaries go to $(go env GOPATH)/bin,
# outside the repository, so that clones share them.
set -euo pipefail
cd "$(dirname "$0")/.."

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
STATICCHECK_VERSION=v0.8.2
# Debian's rclone (1.60) has no --sftp-sha256sum-command, which came in
# 1.71.0: the e2e test of `rclone check` against SHA-256 runs this one.
RCLONE_VERSION=v1.75.0
# SFTP clients for the SFTP door's tests (sshfs mounts over FUSE; scp, ssh and rsync for its
# "SFTP only" answers); chromium for the pages' browser tests; haproxy for the
# several-instances tests behind a load balancer; clamav-daemon's clamd
# for the malware scanning tests (they give it a signature database of
# their own: nothing is downloaded, and the package's services are turned
# off below);
# c-icap and its virus_scan service for the ICAP tests (they start their
# own c-icap, on 127.0.0.1, with a configuration of their own).
DEBIAN_PACKAGES=(ca-certificates curl coreutils openssl unzip python3 openssh-client sshpass lftp rclone rsync putty-tools sshfs chromium haproxy clamav-daemon c-icap libc-icap-mod-virus-scan docker-compose)

. scripts/install-lib.sh

go_install minio github.com/minio/minio github.com/minio/minio "$MINIO_VERSION"
go_install mc github.com/minio/mc github.com/minio/mc "$MC_VERSION"
go_install staticcheck honnef.co/go/tools/cmd/staticcheck honnef.co/go/tools "$STATICCHECK_VERSION"
# Not as $gobin/rclone: $gobin is often on PATH before /usr/bin (it is on
# the test machines), and the other tests run Debian's rclone.
go_install rclone-sha256/rclone github.com/rclone/rclone github.com/rclone/rclone "$RCLONE_VERSION"

debian_install "${DEBIAN_PACKAGES[@]}"
# Where systemd runs, Debian starts the packages' own services: c-icap on
# port 1344 of every address (its /etc/default START=no only holds the
# init script back), clamd (without signatures it fails and restarts) and
# freshclam (it would try to download signatures). The tests start their
# own, on 127.0.0.1: none of these is left running.
if [ -d /run/systemd/system ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  for unit in c-icap clamav-daemon clamav-freshclam; do
    if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
      $sudo_cmd systemctl disable --now "$unit"
    fi
  done
fi

# npm packages from the lock file; skipped when node_modules matches it.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
