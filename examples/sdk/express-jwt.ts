// Validating JWT-SVIDs in an Express middleware: the bearer token must be a JWT-SVID signed by a
// JWT authority of its trust domain (bundles from the Workload API, kept current by a JwtSource),
// not expired, for this service's audience, and its SPIFFE ID must be one the route allows.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock npx tsx express-jwt.ts
//
// The caller here is the same process (it fetches its own JWT-SVID for the audience); plain HTTP
// on 127.0.0.1 keeps the example short: bearer tokens belong on TLS connections.
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { JwtSource, SpiffeId, TrustDomain, isSpiffeError, matchId, matchMemberOf, parseAndValidateJwtSvid } from '@ztwim/spiffe';
import type { Matcher } from '@ztwim/spiffe';

const AUDIENCE = 'spiffe-demo-api';
const CALLERS = TrustDomain.parse(process.env['TRUST_DOMAIN'] ?? 'example.org'); // who may call: its workloads
const jwtSource = await JwtSource.create(); // the JWT bundles the tokens are checked against

/**
 * Lets a request through when it carries a valid JWT-SVID for `audience` whose ID `allowed` accepts
 * (the ID goes to res.locals.spiffeId); 401 without a valid token, 403 for a caller not allowed.
 */
function requireJwtSvid(audience: string, allowed: Matcher): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const token = /^Bearer ([^\s]+)$/i.exec(req.get('authorization') ?? '')?.[1];
    if (token === undefined) {
      res.status(401).set('www-authenticate', 'Bearer').json({ error: 'a JWT-SVID bearer token is required' });
      return;
    }
    try {
      const svid = await parseAndValidateJwtSvid(token, jwtSource, [audience]);
      allowed(svid.id);
      res.locals['spiffeId'] = svid.id;
      next();
    } catch (e) {
      if (!isSpiffeError(e)) throw e;
      if (e.code === 'ERR_AUTHORIZATION')
        res.status(403).json({ error: e.message, code: e.code }); // valid token, caller not allowed here
      else res.status(401).set('www-authenticate', 'Bearer error="invalid_token"').json({ error: e.message, code: e.code });
    }
  };
}

const app = express();
app.get('/whoami', requireJwtSvid(AUDIENCE, matchMemberOf(CALLERS)), (_req, res) => {
  res.json({ spiffe_id: String(res.locals['spiffeId'] as SpiffeId) });
});
const OPS = SpiffeId.fromPath(CALLERS, '/ns/admin/sa/ops');
app.get('/admin', requireJwtSvid(AUDIENCE, matchId(OPS)), (_req, res) => {
  res.json({ ok: true });
});
const server = app.listen(0, '127.0.0.1');
await new Promise<void>((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

async function call(what: string, token?: string, path = '/whoami'): Promise<void> {
  const res = await fetch(base + path, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  console.log(`${what}: ${res.status} ${await res.text()}`);
}

try {
  const svid = await jwtSource.fetchJwtSvid({ audience: AUDIENCE });
  await call('JWT-SVID for the audience', svid.marshal());
  await call('JWT-SVID for another audience', (await jwtSource.fetchJwtSvid({ audience: 'someone-else' })).marshal());
  const [h, p, s] = svid.marshal().split('.');
  await call('tampered JWT-SVID', `${h}.${p}.${s?.startsWith('A') ? 'B' : 'A'}${s?.slice(1)}`);
  await call('no token');
  await call(`GET /admin (only ${OPS.toString()})`, svid.marshal(), '/admin');
} finally {
  server.close();
  await jwtSource.close();
}
