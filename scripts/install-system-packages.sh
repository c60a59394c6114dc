#!/usr/bin/env bash
# System packages the tests use, installed when missing (best effort: needs root and apt).
# Chromium drives the web app's browser tests (Debian's build: tests never download a
# browser); Tesseract is an optional second OCR engine whose tests run where it is installed;
# g++ builds the model-split tests' llama.cpp RPC programs.
set -uo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v tesseract >/dev/null || missing+=(tesseract-ocr tesseract-ocr-eng)
command -v g++ >/dev/null || missing+=(g++)  # links llama.cpp's RPC programs (terminus rpc build)
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    timeout 600 sh -c "apt-get update -qq && apt-get install -y -qq ${missing[*]}" >/dev/null 2>&1 \
        && exit 0
fi
echo "not installed: ${missing[*]} (install them with your package manager; the browser tests need chromium)" >&2
exit 0
