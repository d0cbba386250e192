#!/usr/bin/env bash
# Run the quickstart offline: copy the lab into a fresh git repository and run two dry-run loops there:
# `curve` (a command agent: a script nudging one setting at random) and `tune` (the optuna agent: no LLM).
# Nothing is pushed and no API is called; the pull-request body the bot would write is printed for each.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lab="${1:-$(mktemp -d)/quickstart}"
mkdir -p "$lab"
cp -R "$here/." "$lab/"
rm -f "$lab/run.sh"
cd "$lab"
git init --quiet --initial-branch=main
git add --all
git -c user.name=quickstart -c user.email=quickstart@example.com commit --quiet -m "quickstart lab"
echo "lab: $lab"
for loop in curve tune; do
  echo
  echo "=== loop $loop ==="
  arl-bot run --dry-run --loop "$loop" --experiments "${EXPERIMENTS:-8}"
  echo
  arl-bot results --loop "$loop"
  echo
  echo "research branch autoresearch/$loop (one commit per keep):"
  git log --oneline "main..autoresearch/$loop"
done
