#!/usr/bin/env bash
# Microsoft Entra ID workload identity federation, on one machine, offline:
#   a workload fetches a JWT-SVID with audience api://AzureADTokenExchange from the Workload API,
#   `ztwim oidc check -for entra` lints the live issuer, and the Entra rules accept the token for a
#   federated identity credential {issuer, subject = the workload's SPIFFE ID}; tokens with the
#   wrong audience or another subject are refused.
# Entra ID itself is not reachable from here: examples/entra-check.mjs applies its documented rules.
# Exits non-zero when any check fails; always stops `ztwim up` and removes its temp dir.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AUDIENCE="api://AzureADTokenExchange"
ISSUER="https://localhost:$OIDC_PORT"

# Entra needs an https issuer and RS256 keys (shared/spec/consumers.md §2). A local CA stands in for
# the public CA (or ACME) a real issuer would use; the checks below trust it explicitly.
step "serving certificate for localhost (local CA in $WORK/tls)"
mkdir -p "$WORK/tls"
(
  cd "$WORK/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 1 -subj "/CN=ztwim example CA" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out leaf.csr -subj "/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >ext.cnf
  openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 1 -extfile ext.cnf 2>/dev/null
) || die "openssl could not make the serving certificate"
ok "$WORK/tls/cert.pem issued by $WORK/tls/ca.pem"

start_up -jwtKeyType rsa-2048 -oidcCert "$WORK/tls/cert.pem" -oidcKey "$WORK/tls/key.pem"

step "ztwim oidc check -for entra $ISSUER"
ztwim oidc check -for entra -caFile "$WORK/tls/ca.pem" "$ISSUER" || die "the issuer does not meet Entra ID's rules"

register_workload

step "the workload fetches a JWT-SVID for $AUDIENCE"
TOKEN="$(fetch_jwt "$AUDIENCE" "$WORKLOAD_ID")"
show_claims "$TOKEN"

step "Entra ID checks (FIC: issuer $ISSUER, subject $WORKLOAD_ID, audience $AUDIENCE)"
node "$EX_DIR/entra-check.mjs" --token "$TOKEN" --issuer "$ISSUER" --subject "$WORKLOAD_ID" --audience "$AUDIENCE" --ca "$WORK/tls/ca.pem" ||
  die "Entra ID would refuse the workload's token"

step "refused: a token for another audience (client)"
OTHER_AUD="$(fetch_jwt client "$WORKLOAD_ID")"
if node "$EX_DIR/entra-check.mjs" --token "$OTHER_AUD" --issuer "$ISSUER" --subject "$WORKLOAD_ID" --audience "$AUDIENCE" --ca "$WORK/tls/ca.pem" >"$WORK/refused-aud.txt"; then
  cat "$WORK/refused-aud.txt"
  die "a token for audience client was accepted"
fi
grep -E '^(REFUSE|REFUSED)' "$WORK/refused-aud.txt"
grep -q 'AADSTS700212' "$WORK/refused-aud.txt" || die "the wrong audience was refused for another reason"
ok "wrong audience refused (AADSTS700212)"

step "refused: the invoking user's own identity against the workload's FIC"
USER_ID="spiffe://$TD/user/$(id -un)"
OTHER_SUB="$(fetch_jwt "$AUDIENCE" "$USER_ID")"
if node "$EX_DIR/entra-check.mjs" --token "$OTHER_SUB" --issuer "$ISSUER" --subject "$WORKLOAD_ID" --audience "$AUDIENCE" --ca "$WORK/tls/ca.pem" >"$WORK/refused-sub.txt"; then
  cat "$WORK/refused-sub.txt"
  die "a token for $USER_ID was accepted for the FIC of $WORKLOAD_ID"
fi
grep -E '^(REFUSE|REFUSED)' "$WORK/refused-sub.txt"
grep -q 'AADSTS70021' "$WORK/refused-sub.txt" || die "the other subject was refused for another reason"
ok "other subject refused (AADSTS70021)"

printf '\nPASS entra-federation: %s accepted for audience %s at issuer %s; wrong audience and wrong subject refused\n' "$WORKLOAD_ID" "$AUDIENCE" "$ISSUER"
