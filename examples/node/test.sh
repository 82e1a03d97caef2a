#!/usr/bin/env bash
# The Node.js example end to end against a real coordinator (sweepd installed: the
# `coordinator` command on PATH, or $SWEEPD_COORDINATOR_BIN). Installs the pinned packages of
# package-lock.json, then runs node's own test runner.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
node --test test/
