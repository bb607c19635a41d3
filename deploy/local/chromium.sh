#!/usr/bin/env bash
# Headless Chromium for the console's browser test (cmd/riskflow, build tag browser, driven by
# chromedp). Idempotent: installs the Debian package chromium only when no Chromium is on PATH.
#   chromium.sh install   install if missing (apt-get, as root or through sudo)
#   chromium.sh path      print the browser's path (exit 1 if there is none)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

find_browser() {
  local b
  if [[ -n ${RISKFLOW_CHROMIUM:-} && -x ${RISKFLOW_CHROMIUM} ]]; then echo "$RISKFLOW_CHROMIUM"; return 0; fi
  for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}

install() {
  if b=$(find_browser); then log "chromium present: $b ($("$b" --version 2>/dev/null | head -1))"; return 0; fi
  local sudo=""
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "installing chromium needs root (apt-get install -y chromium)"
    sudo="sudo"
  fi
  command -v apt-get >/dev/null 2>&1 || die "no apt-get: install Chromium yourself and set RISKFLOW_CHROMIUM"
  log "installing the Debian package chromium"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  b=$(find_browser) || die "chromium is still missing after apt-get install"
  log "chromium installed: $b ($("$b" --version 2>/dev/null | head -1))"
}

case "${1:-}" in
  install) install ;;
  path) find_browser ;;
  *) die "usage: chromium.sh install|path" ;;
esac
