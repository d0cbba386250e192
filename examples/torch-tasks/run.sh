#!/usr/bin/env bash
# Run a built-in torch task offline: `arl-bot init --task` in a fresh repository, then a dry-run loop there.
# Usage: examples/torch-tasks/run.sh [charlm|digits] [lab-dir]. Needs torch and scikit-learn
# (pip install -e ".[torch]"). Nothing is pushed and no API is called.
set -euo pipefail
task="${1:-digits}"
lab="${2:-$(mktemp -d)/$task}"
mkdir -p "$lab"
cd "$lab"
git init --quiet --initial-branch=main
arl-bot init --task "$task"
git add --all
git -c user.name=torch-tasks -c user.email=torch-tasks@example.com commit --quiet -m "$task lab"
echo "lab: $lab"
arl-bot run --dry-run --experiments "${EXPERIMENTS:-3}"
echo
arl-bot results
