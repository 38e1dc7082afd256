# Sourced by test-deps.sh and bench-deps.sh: installs at pinned versions,
# and only what is missing. Binaries go to $(go env GOPATH)/bin, outside
# the repository, so that clones share them.

gobin="$(go env GOPATH)/bin"

# go_install BIN PACKAGE MODULE VERSION: installs PACKAGE@VERSION as
# $gobin/BIN unless that was built from exactly that version of MODULE. A BIN
# in a subfolder is off PATH: it shadows nothing of the same name.
go_install() {
  local bin=$1 pkg=$2 module=$3 want=$4
  if [ -x "$gobin/$bin" ] && go version -m "$gobin/$bin" 2>/dev/null | grep -q "mod[[:space:]]*${module}[[:space:]]*${want}"; then
    return
  fi
  echo "installing $pkg@$want (MinIO and rclone take a few minutes the first time)"
  (cd /tmp && GOFLAGS= GOBIN="$(dirname "$gobin/$bin")" go install "$pkg@$want")
}

# debian_install PACKAGE...: apt-get installs those not installed yet.
debian_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    local sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
  fi
}
