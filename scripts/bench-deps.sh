#!/usr/bin/env bash
# Installs the peers `make bench` measures casedrop against, at pinned
# versions and only when missing, outside the repository: tusd (built by go
# install in its own module, off PATH) and OpenSSH's server. SFTPGo is not
# installed: the bench runs it only when SFTPGO_BIN names a build of it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/install-lib.sh

TUSD_VERSION=v2.10.1

# In a folder named for its version: off PATH, and an upgrade is a new
# folder rather than a silent replacement of the figures' peer.
go_install "tusd-$TUSD_VERSION/tusd" github.com/tus/tusd/v2/cmd/tusd github.com/tus/tusd/v2 "$TUSD_VERSION"
debian_install openssh-server openssh-sftp-server
