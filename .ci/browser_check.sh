#!/usr/bin/env bash
# Loads the dashboard, a sensor page and a run page in headless Chromium against the real
# app and database, checks the DOM Chromium built, and writes screenshots (PNG) to
# target/browser-check/ (or $HYGROCAST_SCREENSHOT_DIR). Installs Debian's chromium if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    echo "browser check: installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
fi

HYGROCAST_BROWSER_CHECK=1 cargo test --test browser -- --nocapture
