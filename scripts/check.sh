#!/usr/bin/env bash
# The whole check: lint, format, types, docs, tests. Fails on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TIKTOKEN_CACHE_DIR:-}" ] && [ -d ../shared/tiktoken ]; then
  export TIKTOKEN_CACHE_DIR="$(cd ../shared/tiktoken && pwd)"
fi
echo "== ruff check";   ruff check src tests benchmarks examples scripts
echo "== ruff format";  ruff format --check src tests benchmarks examples scripts
echo "== mypy";         mypy --strict src/finetune
echo "== mypy (3.10)";  mypy --strict --python-version 3.10 src/finetune
# The examples, checked as a user's code: no config, so no pydantic plugin (users lack it)
echo "== mypy (examples)"; mypy --strict --config-file= examples
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
  site="$(mktemp -d)"
  trap 'rm -rf "$site"' EXIT
  mkdocs build --strict --quiet --site-dir "$site"
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
# The floors pyproject.toml declares, run: a second environment at the oldest versions
# (4-5 minutes; SKIP_FLOORS=1 leaves it out of a quick run of your own)
if [ -z "${SKIP_FLOORS:-}" ]; then
  echo "== the oldest dependencies pyproject.toml allows (scripts/lowest.sh)"
  SECONDS=0
  bash scripts/lowest.sh
  echo "== the oldest dependencies: passed in ${SECONDS} s"
fi
