#!/usr/bin/env bash
# Makes a development update-signing CA once in DIR (dev.key.pem,
# dev.cert.pem). Production builds pass their own pair instead
# (FTB_SIGNING_KEY, FTB_SIGNING_CERT); see docs/updates.md.
set -euo pipefail
DIR=$1
[ -f "$DIR/dev.cert.pem" ] && [ -f "$DIR/dev.key.pem" ] && exit 0
mkdir -p "$DIR"
umask 077
openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/O=ftbridge development/CN=ftbridge dev update signing" \
	-keyout "$DIR/dev.key.pem" -out "$DIR/dev.cert.pem" 2>/dev/null
echo "devkeys.sh: made a development signing key in $DIR (not for production)"
