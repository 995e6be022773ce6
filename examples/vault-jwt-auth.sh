#!/usr/bin/env bash
# HashiCorp Vault JWT auth, on one machine, offline:
#   a workload fetches a JWT-SVID with audience `client` from the Workload API, and HashiCorp's
#   cap/jwt (the library behind Vault's JWT auth method), configured like this Vault role:
#
#     vault write auth/jwt/config oidc_discovery_url="http://localhost:$OIDC_PORT"
#     vault write auth/jwt/role/demo-client role_type=jwt user_claim=sub \
#       bound_audiences=client bound_claims_type=glob \
#       bound_claims='{"sub":"spiffe://example.org/ns/demo/sa/*"}' token_policies=demo
#
#   grants the role to spiffe://example.org/ns/demo/sa/client; a token with another audience and a
#   token of an identity outside ns/demo are refused.
# Vault itself is not run here: test/interop/capjwt is a small Go program around cap/jwt that
# applies the role the way vault-plugin-auth-jwt does.
# Exits non-zero when any check fails; always stops `ztwim up` and removes its temp dir.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ISSUER="http://localhost:$OIDC_PORT"
ROLE="demo-client"
SUB_GLOB="spiffe://$TD/ns/demo/sa/*"

step "build the cap/jwt validator (test/interop/capjwt, github.com/hashicorp/cap v0.13.0)"
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi
command -v go >/dev/null || die "go (>= 1.24) is needed to build the cap/jwt validator"
(cd "$ROOT/test/interop/capjwt" && GOSUMDB=off GOFLAGS=-mod=mod go build -o "$WORK/capjwt" .) || die "go build of test/interop/capjwt failed"
ok "$WORK/capjwt"

# capjwt TOKEN: Vault's login for role $ROLE; prints cap/jwt's verdict as JSON.
capjwt() {
  "$WORK/capjwt" -issuer "$ISSUER" -token "$1" -aud client -sub-glob "$SUB_GLOB" -role "$ROLE"
}

start_up

step "ztwim oidc check -for vault $ISSUER"
ztwim oidc check -for vault "$ISSUER" || die "the issuer does not meet Vault's rules"

register_workload

step "the workload fetches a JWT-SVID for audience client"
TOKEN="$(fetch_jwt client "$WORKLOAD_ID")"
show_claims "$TOKEN"

step "Vault login with role $ROLE (oidc_discovery_url $ISSUER, bound_audiences client, bound_claims sub=$SUB_GLOB, user_claim sub)"
capjwt "$TOKEN" >"$WORK/granted.json" || {
  cat "$WORK/granted.json"
  die "cap/jwt refused the workload's token"
}
GRANT="$(node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); if (!r.ok) process.exit(1); console.log(`role=${r.role} user=${r.user}`)' "$WORK/granted.json")" ||
  die "unexpected cap/jwt output: $(cat "$WORK/granted.json")"
[ "$GRANT" = "role=$ROLE user=$WORKLOAD_ID" ] || die "granted $GRANT, expected role=$ROLE user=$WORKLOAD_ID"
ok "granted: $GRANT"

step "refused: a token for another audience (api://AzureADTokenExchange)"
OTHER_AUD="$(fetch_jwt api://AzureADTokenExchange "$WORKLOAD_ID")"
if capjwt "$OTHER_AUD" >"$WORK/refused-aud.json"; then die "a token for another audience was accepted: $(cat "$WORK/refused-aud.json")"; fi
cat "$WORK/refused-aud.json"
grep -q 'invalid audience (aud) claim' "$WORK/refused-aud.json" || die "the wrong audience was refused for another reason"
ok "wrong audience refused"

step "refused: an identity outside ns/demo (the invoking user's own)"
USER_ID="spiffe://$TD/user/$(id -un)"
OTHER_SUB="$(fetch_jwt client "$USER_ID")"
if capjwt "$OTHER_SUB" >"$WORK/refused-sub.json"; then die "$USER_ID was granted $ROLE: $(cat "$WORK/refused-sub.json")"; fi
cat "$WORK/refused-sub.json"
grep -q 'does not match any associated bound claim values' "$WORK/refused-sub.json" || die "the other identity was refused for another reason"
ok "identity outside the bound claims refused"

printf '\nPASS vault-jwt-auth: role %s granted to %s (audience client, issuer %s); wrong audience and unbound identity refused\n' "$ROLE" "$WORKLOAD_ID" "$ISSUER"
