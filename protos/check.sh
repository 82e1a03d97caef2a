#!/usr/bin/env bash
# The API's guards, with the buf pinned in package-lock.json (installed here by `npm ci`):
#   buf lint      STANDARD + COMMENTS (exceptions named in buf.yaml, each with its reason)
#   buf format    the protos are formatted as buf formats them
#   buf breaking  nothing a client relies on changed incompatibly, against the released API
#                 (api-baseline.binpb, or any buf input in $SWEEPD_PROTO_AGAINST, e.g.
#                 SWEEPD_PROTO_AGAINST='../.git#branch=main,subdir=protos')
#
#   protos/check.sh                    run the three checks; exit non-zero on any finding
#   protos/check.sh --update-baseline  on a release: make the current API the baseline
set -euo pipefail
cd "$(dirname "$0")"

want=$(node -p "require('./package.json').devDependencies['@bufbuild/buf']")
have=$(node_modules/.bin/buf --version 2>/dev/null || true)
if [ "$have" != "$want" ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
buf=node_modules/.bin/buf

if [ "${1:-}" = "--update-baseline" ]; then
    "$buf" build --exclude-source-info -o api-baseline.binpb
    echo "api-baseline.binpb: the current protos are now the baseline for buf breaking"
    exit 0
fi

failed=0
"$buf" lint || { echo "buf lint: see above (protos/buf.yaml has the rules)"; failed=1; }
"$buf" format --diff --exit-code \
    || { echo "buf format: run protos/node_modules/.bin/buf format -w protos"; failed=1; }
"$buf" breaking --against "${SWEEPD_PROTO_AGAINST:-api-baseline.binpb}" \
    || { echo "buf breaking: an incompatible API change (see above)"; failed=1; }
if [ "$failed" = 0 ]; then
    echo "protos: buf $want lint, format and breaking clean"
fi
exit "$failed"
