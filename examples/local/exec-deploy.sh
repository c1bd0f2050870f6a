#!/bin/sh
# The deploy command of examples/exec-local.yaml: zoku runs it after each
# new certificate, with the hook variables of lego (LEGO_HOOK_*), certbot
# (RENEWED_LINEAGE, RENEWED_DOMAINS) and acme.sh (CERT_PATH,
# CERT_KEY_PATH, CA_CERT_PATH, CERT_FULLCHAIN_PATH). A real one would push
# the files to an appliance; this one copies them to a folder.
set -eu
dest=".zoku-local/exec/$LEGO_HOOK_CERT_NAME_SANITIZED"
mkdir -p "$dest"
umask 077 # the key stays private
cp "$CERT_FULLCHAIN_PATH" "$dest/.fullchain.pem.tmp" && mv "$dest/.fullchain.pem.tmp" "$dest/fullchain.pem"
cp "$CERT_KEY_PATH" "$dest/.privkey.pem.tmp" && mv "$dest/.privkey.pem.tmp" "$dest/privkey.pem"
echo "exec-deploy.sh: $LEGO_HOOK_CERT_DOMAINS deployed to $dest"
