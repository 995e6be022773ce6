// A JWT-SVID to log in to HashiCorp Vault's JWT auth method: Vault checks the token against the
// trust domain's OIDC discovery document and keys and grants the role's policies.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock \
//   VAULT_ADDR=https://vault.example.org:8200 VAULT_ROLE=demo-client npx tsx vault-jwt.ts
//
// The Vault side (once):
//   vault auth enable jwt
//   vault write auth/jwt/config oidc_discovery_url=https://oidc.example.org   # ztwim oidc
//   vault write auth/jwt/role/demo-client role_type=jwt user_claim=sub bound_audiences=vault \
//     bound_claims_type=glob bound_claims='{"sub":"spiffe://example.org/user/*"}' token_policies=demo
//
// Vault is not installable where the project's tests run: the test answers this login with a
// stand-in that validates the token with HashiCorp's cap/jwt (the library behind Vault's JWT auth)
// against the ztwim OIDC discovery provider, configured like the role above.
import { JwtSource } from '@ztwim/spiffe';

const VAULT_ADDR = process.env['VAULT_ADDR'] ?? 'http://127.0.0.1:8200';
const ROLE = process.env['VAULT_ROLE'] ?? 'demo-client';
const AUDIENCE = process.env['VAULT_AUDIENCE'] ?? 'vault';
const MOUNT = process.env['VAULT_JWT_MOUNT'] ?? 'jwt';

interface VaultLogin {
  auth?: { client_token: string; policies?: string[]; metadata?: Record<string, string>; lease_duration?: number };
  errors?: string[];
}

const jwtSource = await JwtSource.create();
try {
  const svid = await jwtSource.fetchJwtSvid({ audience: AUDIENCE });
  console.log(`JWT-SVID for ${svid.id.toString()}, audience ${svid.audience.join(',')}`);
  const res = await fetch(`${VAULT_ADDR}/v1/auth/${MOUNT}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ role: ROLE, jwt: svid.marshal() }),
  });
  const body = (await res.json()) as VaultLogin;
  if (!res.ok || body.auth === undefined) {
    console.log(`vault refused the login for role ${ROLE}: ${res.status} ${(body.errors ?? []).join('; ')}`);
    process.exitCode = 1;
  } else {
    // The client token goes to the Vault client (X-Vault-Token); never log it.
    console.log(
      `vault login: role ${body.auth.metadata?.['role'] ?? ROLE}, policies ${(body.auth.policies ?? []).join(',')}, lease ${body.auth.lease_duration ?? 0}s`,
    );
  }
} finally {
  await jwtSource.close();
}
