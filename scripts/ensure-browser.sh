#!/usr/bin/env bash
# Make sure the headless browser for tests/test_serve_browser.py is here: Debian's chromium and
# chromium-driver. Installs them when missing and possible (root + apt-get); never fails the build —
# where it cannot install, it says why and the browser test skips with that reason.
set -uo pipefail
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/lib/chromium/$1" ]; }
if { have chromium || have chromium-browser; } && have chromedriver; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser test: installing Debian packages chromium and chromium-driver (quietly; a minute or two)"
  if apt-get update -qq >/dev/null 2>&1 &&
     DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; then
    echo "browser test: chromium and chromium-driver installed"
  else
    echo "browser test: could not install chromium/chromium-driver with apt-get; tests/test_serve_browser.py will skip" >&2
  fi
  exit 0
fi
echo "browser test: chromium and chromium-driver are missing and this is not root with apt-get;" \
     "tests/test_serve_browser.py will skip (install them: sudo apt-get install chromium chromium-driver)" >&2
exit 0
