# Sourced by serve.sh and test.sh: find Python 3.10+, make .venv, install $1.
# On a fresh Debian, python3 -m venv needs the python3-venv package; install it
# (with sudo when not root) only when creating the venv fails without it.

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root for: $*" >&2; return 1; fi
}

apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

bootstrap() {
  local requirements=$1
  local python=${PYTHON:-python3}
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "Threading Playground needs Python 3.10 or newer; '$python' is not (set PYTHON=/path/to/python3.x)." >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
      rm -rf .venv
      local version
      version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      apt_install "python${version}-venv" || apt_install python3-venv
      "$python" -m venv .venv
    fi
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
}
