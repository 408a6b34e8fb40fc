#!/usr/bin/env bash
# cargo deny check advisories against a local copy of the RustSec advisory database (no network):
#   scripts/check-advisories.sh [ADVISORY_DB_DIR]     (default: ../shared/advisory-db beside the repository)
# cargo-deny reads the database as a git checkout at <db-path>/advisory-db-<hash of its URL>, so the plain-file
# snapshot is copied into a temporary folder and committed there with the snapshot's date.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="${1:-$root/../shared/advisory-db}"
[ -d "$src/crates" ] || { echo "no advisory database at $src" >&2; exit 2; }
command -v cargo-deny >/dev/null || { echo "cargo-deny is not installed: cargo install cargo-deny --locked" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
db="$tmp/advisory-db-3157b0e258782691"   # the folder cargo-deny 0.20 uses for github.com/rustsec/advisory-db
cp -r "$src" "$db"
date="$(grep -o '[0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}' "$src/SNAPSHOT.txt" 2>/dev/null | head -1 || true)"
if [ -n "$date" ]; then export GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z"; fi
(cd "$db" && git init -q && git add -A && git -c user.name=snapshot -c user.email=snapshot@localhost commit -q -m snapshot)
# the project's deny.toml with the database location added to its [advisories] table
sed "s|^\[advisories\]\$|[advisories]\ndb-path = \"$tmp\"\ndb-urls = [\"https://github.com/rustsec/advisory-db\"]|" \
  "$root/deny.toml" > "$tmp/deny.toml"
cd "$root"
cargo deny --config "$tmp/deny.toml" --offline check advisories
