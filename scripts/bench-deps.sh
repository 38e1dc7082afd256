#!/usr/bin/env bash
# Installs the peers `make bench` measures casedrop against, at pinned
# versions and only when missing, outside the repository: tusd (built in a
# scratch module, off PATH) and OpenSSH's server. SFTPGo is not installed:
# the bench runs it only when SFTPGO_BIN names a build of it.
set -euo pipefail
cd "$(dirname "$0")/.."

TUSD_VERSION=v2.10.1
DEBIAN_PACKAGES=(openssh-server openssh-sftp-server)

# go_install comes from test-deps.sh's definition, repeated here rather than
# sourced: sourcing that script would run its installs too.
gobin="$(go env GOPATH)/bin"
go_install() {
  local bin=$1 pkg=$2 module=$3 want=$4
  if [ -x "$gobin/$bin" ] && go version -m "$gobin/$bin" 2>/dev/null | grep -q "mod[[:space:]]*${module}[[:space:]]*${want}"; then
    return
  fi
  echo "installing $pkg@$want"
  (cd /tmp && GOFLAGS= GOBIN="$(dirname "$gobin/$bin")" go install "$pkg@$want")
}

# In a folder named for its version: off PATH, and an upgrade is a new
# folder rather than a silent replacement of the figures' peer.
go_install "tusd-$TUSD_VERSION/tusd" github.com/tus/tusd/v2/cmd/tusd github.com/tus/tusd/v2 "$TUSD_VERSION"

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
