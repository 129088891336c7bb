#!/bin/sh
# Creates (or reuses) the Python virtual environment of the conformance tests and prints the path
# of its interpreter. Idempotent and fast when the venv is ready: it installs only when a package
# is missing. The venv lives in $CELL_VENV, else ${XDG_CACHE_HOME:-~/.cache}/cell/venv.
#
#   export CELL_PYTHON="$(sh tests/conformance/setup.sh)"
set -eu
venv="${CELL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cell/venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c 'import msgpack, mypy, pydantic' 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    'msgpack>=1.0,<2' 'mypy>=1.10' 'pydantic>=2,<3' >&2
fi
echo "$venv/bin/python"
