// A real OpenID Provider for the console's OIDC tests: panva's certified `oidc-provider` in its
// own process, on 127.0.0.1 with the issuer http://localhost:<port> (another site than the
// console's 127.0.0.1, so the browser's return to the console is a cross-site navigation, as with a
// real provider). One public client (PKCE) for the console's redirect URI, and its development
// login pages: any password, the login name is the account, whose `groups` claim says its role:
//   admin -> ["ztwim-admins"], viewer -> ["ztwim-viewers"], anyone else -> ["staff"].
// Usage: node --import tsx oidc-provider-peer.ts <client_id> <redirect_uri>; prints
// `{"issuer": "..."}` on one line once it serves.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

const [clientId, redirectUri] = process.argv.slice(2);
if (clientId === undefined || redirectUri === undefined) {
  process.stderr.write('usage: oidc-provider-peer.ts <client_id> <redirect_uri>\n');
  process.exit(2);
}

const GROUPS: Record<string, string[]> = { admin: ['ztwim-admins'], viewer: ['ztwim-viewers'] };

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://localhost:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        redirect_uris: [redirectUri],
        post_logout_redirect_uris: [new URL('/', redirectUri).href],
        token_endpoint_auth_method: 'none',
        response_types: ['code'],
        grant_types: ['authorization_code'],
      },
    ],
    claims: { openid: ['sub'], profile: ['preferred_username'], groups: ['groups'] },
    scopes: ['openid', 'profile', 'groups'],
    // As Keycloak with a group mapper: the scope's claims in the ID token itself.
    conformIdTokenClaims: false,
    cookies: { keys: ['ztwim-test-cookie-key-0123456789abcdef'] },
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, preferred_username: id, groups: GROUPS[id] ?? ['staff'] }),
    }),
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
