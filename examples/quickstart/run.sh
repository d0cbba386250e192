#!/usr/bin/env bash
# Run the quickstart offline: copy the lab into a fresh git repository and run a dry-run loop there.
# Nothing is pushed and no API is called; the pull-request body the bot would write is printed at the end.
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
arl-bot run --dry-run --experiments "${EXPERIMENTS:-8}"
echo
arl-bot results
echo
echo "research branch (one commit per keep):"
git log --oneline main..autoresearch/curve
