#!/usr/bin/env bash
# The whole check: lint, format, types, docs, tests. Fails on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each module's bytecode is written once and read by every later process: the suite starts
# hundreds (CLI runs, training workers), and without it each compiled finetune's modules again
# (0.4 s a process here) and, in the floors' environments (installed --no-compile), their
# dependencies too (2.4 s a process). Some environments turn the writing off.
unset PYTHONDONTWRITEBYTECODE
if [ -z "${TIKTOKEN_CACHE_DIR:-}" ] && [ -d ../shared/tiktoken ]; then
  export TIKTOKEN_CACHE_DIR="$(cd ../shared/tiktoken && pwd)"
fi
echo "== ruff check";   ruff check src tests benchmarks examples scripts
echo "== ruff format";  ruff format --check src tests benchmarks examples scripts
# what the steps run in the background write, and the floors' install, stopped if we stop
logs="$(mktemp -d)"
floors_install=""
finish() {  # an install still running (the suite failed, Ctrl-C) ends with us, pip and all
  if [ -n "$floors_install" ]; then
    kill -- "-$floors_install" 2>/dev/null || kill "$floors_install" 2>/dev/null || true
    wait "$floors_install" || true
  fi
  rm -rf "$logs"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# mypy three ways at once, each with a cache of its own (the examples' run reads transformers
# and torch: 55 s alone): src at Python 3.11 and 3.10, and the examples as a user's code, with
# no config, so no pydantic plugin (users lack it)
names=() pids=()
typecheck() {  # NAME MYPY-ARGUMENTS...: in the background, its output kept for the report
  names+=("$1")
  shift
  mypy "$@" >"$logs/${#names[@]}" 2>&1 &
  pids+=("$!")
}
typecheck "mypy" --strict src/finetune
typecheck "mypy (3.10)" --strict --python-version 3.10 --cache-dir .mypy_cache/3.10 src/finetune
typecheck "mypy (examples)" --strict --config-file= --cache-dir .mypy_cache/examples examples
failed=0
for i in "${!pids[@]}"; do
  echo "== ${names[$i]}"
  wait "${pids[$i]}" || failed=1
  cat "$logs/$((i + 1))"
done
[ "$failed" -eq 0 ]
# Every public name typed (pyright's type completeness, 100%) and with a docstring, where
# pyright is installed (--outputjson lists the names without one)
pyright_bin="$(command -v pyright || echo .ci/node/node_modules/.bin/pyright)"
if [ -x "$pyright_bin" ]; then
  echo "== pyright --verifytypes"
  typed="$(PYTHONPATH="$PWD/src" "$pyright_bin" --pythonpath "$(command -v python)" \
    --verifytypes finetune --ignoreexternal 2>&1)" || { echo "$typed"; exit 1; }
  grep -E "completeness score|without docstring" <<<"$typed"
  if grep -E "without docstring: [1-9]" <<<"$typed" >/dev/null; then exit 1; fi
fi
export NO_MKDOCS_2_WARNING=1
if [ -f mkdocs.yml ]; then
  echo "== mkdocs"
  mkdocs build --strict --quiet --site-dir "$logs/site"
fi
# The floors pyproject.toml declares are run after the suite (SKIP_FLOORS=1 leaves them out of
# a quick run of your own). Their environments are made while it runs (about a minute of pip),
# niced: the tests keep the cores, and pip takes the moments they wait on a process or a server
if [ -z "${SKIP_FLOORS:-}" ]; then
  install=(nice -n 10 bash scripts/lowest.sh install)
  # a process group of its own (setsid), so that stopping it stops pip too
  if command -v setsid >/dev/null; then install=(setsid --wait "${install[@]}"); fi
  "${install[@]}" >"$logs/floors" 2>&1 &
  floors_install=$!
fi
echo "== pytest"
# A worker per core (pytest-xdist, in the dev extra), a test file each at a time: half the
# suite's time waits on subprocesses and loopback servers, which the other worker fills.
parallel=()
if python -c "import xdist" 2>/dev/null; then parallel=(-n auto --dist loadfile --no-loadscope-reorder); fi
set +e
python -m pytest -q -rs -p no:cacheprovider --durations=15 "${parallel[@]}" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi
if [ "$status" -ne 0 ]; then exit "$status"; fi
if [ -n "$floors_install" ]; then
  echo "== the oldest dependencies pyproject.toml allows (scripts/lowest.sh)"
  SECONDS=0
  installed=0
  wait "$floors_install" || installed=$?
  floors_install=""
  cat "$logs/floors"
  [ "$installed" -eq 0 ] || { echo "the floors' environments could not be made"; exit 1; }
  bash scripts/lowest.sh test
  echo "== the oldest dependencies: passed in ${SECONDS} s after the suite"
fi
