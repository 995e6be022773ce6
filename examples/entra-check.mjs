#!/usr/bin/env node
// What Microsoft Entra ID checks on a client assertion before it exchanges it for an access token
// (workload identity federation), run here because Entra itself cannot be reached offline. The rules
// are the documented ones (shared/spec/consumers.md §2); this is an emulation, not Entra.
//
//   node examples/entra-check.mjs --token JWT --issuer URL --subject SUB
//        [--audience api://AzureADTokenExchange] [--ca CA.pem]
//
// The federated identity credential (FIC) is {issuer, subject, audiences: [audience]}. The token is
// verified against the issuer's discovery document and key set (fetched over https, trusting
// --ca in addition to the system roots), then its claims are matched against the FIC.
// Exit 0: accepted; 1: refused (with the AADSTS code where shared/spec names one); 2: usage error.
import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { rootCertificates } from 'node:tls';

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const token = opt('token');
const fic = { issuer: opt('issuer'), subject: opt('subject'), audiences: [opt('audience', 'api://AzureADTokenExchange')] };
const caFile = opt('ca');
if (token === undefined || fic.issuer === undefined || fic.subject === undefined) {
  console.error('usage: entra-check.mjs --token JWT --issuer URL --subject SUB [--audience AUD] [--ca CA.pem]');
  process.exit(2);
}
const ca = caFile === undefined ? undefined : [...rootCertificates, readFileSync(caFile, 'utf8')];

let failed = 0;
const pass = (rule, detail) => console.log(`ok     ${rule}: ${detail}`);
const refuse = (code, rule, detail) => {
  failed++;
  console.log(`REFUSE ${rule}: ${detail} (${code})`);
};

function get(url) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { headers: { accept: 'application/json' }, ...(ca === undefined ? {} : { ca }), timeout: 10_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? '', body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

// The FIC itself (Entra refuses to store one that breaks these).
if (fic.issuer.length > 600 || fic.subject.length > 600) refuse('invalid FIC', 'fic.length', 'issuer and subject are limited to 600 characters');
if (fic.audiences.length !== 1) refuse('invalid FIC', 'fic.audiences', 'a FIC has exactly one audience');

// The assertion: a compact JWS.
const parts = token.split('.');
if (parts.length !== 3) {
  refuse('no code named', 'jwt.format', 'not a compact JWS');
  process.exit(1);
}
const decode = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
const header = decode(parts[0]);
const claims = decode(parts[1]);

// Signature: discovery at {iss}/.well-known/openid-configuration → jwks_uri → the key named by kid.
const iss = typeof claims.iss === 'string' ? claims.iss : '';
let key;
try {
  if (!iss.startsWith('https://')) throw new Error(`issuer "${iss}" is not https`);
  const disc = await get(`${iss}/.well-known/openid-configuration`);
  if (disc.status !== 200) throw new Error(`discovery answered ${disc.status}`);
  const doc = JSON.parse(disc.body);
  if (doc.issuer !== iss) throw new Error(`discovery issuer "${doc.issuer}" differs from the token's "${iss}"`);
  pass('discovery', `${iss}/.well-known/openid-configuration names issuer "${doc.issuer}" and jwks_uri ${doc.jwks_uri}`);
  const jwks = await get(doc.jwks_uri);
  if (jwks.status !== 200) throw new Error(`jwks_uri answered ${jwks.status}`);
  const keys = JSON.parse(jwks.body).keys ?? [];
  if (keys.length > 100) throw new Error(`key set has ${keys.length} keys; Entra keeps the first 100`);
  key = keys.find((k) => k.kid === header.kid);
  if (key === undefined) throw new Error(`no key with kid "${header.kid}" at ${doc.jwks_uri}`);
  if (key.use !== 'sig') throw new Error(`key "${key.kid}" has use=${JSON.stringify(key.use)}; Entra expects "sig"`);
  pass('jwks', `key "${key.kid}" (${key.kty}, use=sig) found among ${keys.length}`);
} catch (e) {
  refuse('AADSTS700211', 'issuer.keys', e.message);
}

if (header.alg !== 'RS256') refuse('no code named', 'jwt.alg', `alg ${header.alg}; Entra supports RS256 only`);
else pass('jwt.alg', 'RS256');
if (header.typ !== undefined && header.typ !== 'JWT') refuse('no code named', 'jwt.typ', `typ ${header.typ}`);
if (key !== undefined && header.alg === 'RS256') {
  const good = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), createPublicKey({ key, format: 'jwk' }), Buffer.from(parts[2], 'base64url'));
  if (good) pass('jwt.signature', 'verifies with the published key');
  else refuse('no code named', 'jwt.signature', 'signature does not verify');
}

// Claims against the FIC: exact, case-sensitive string matches.
if (iss === fic.issuer && !/\s/.test(iss)) pass('iss', `"${iss}" equals the FIC issuer`);
else refuse('AADSTS700211', 'iss', `"${iss}" does not equal the FIC issuer "${fic.issuer}"`);
const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
if (aud.includes(fic.audiences[0])) pass('aud', `${JSON.stringify(aud)} contains the FIC audience "${fic.audiences[0]}"`);
else refuse('AADSTS700212', 'aud', `${JSON.stringify(aud)} does not contain the FIC audience "${fic.audiences[0]}"`);
if (claims.sub === fic.subject) pass('sub', `"${claims.sub}" equals the FIC subject`);
else refuse('AADSTS70021', 'sub', `"${claims.sub}" does not equal the FIC subject "${fic.subject}"`);

// Lifetime: integer times, not expired, not issued in the future, short-lived. Entra's own maximum
// lifetime and clock skew are not documented: 5 min skew and 1 h maximum are this example's choice.
const now = Math.floor(Date.now() / 1000);
const skew = 300;
if (!Number.isInteger(claims.exp) || !Number.isInteger(claims.iat)) refuse('no code named', 'lifetime', 'exp and iat must be integer seconds');
else if (claims.exp <= now - skew) refuse('no code named', 'lifetime', `expired at ${new Date(claims.exp * 1000).toISOString()}`);
else if (claims.iat > now + skew) refuse('no code named', 'lifetime', `issued in the future (${new Date(claims.iat * 1000).toISOString()})`);
else if (claims.exp - claims.iat > 3600) refuse('no code named', 'lifetime', `lifetime ${claims.exp - claims.iat} s is over 1 h`);
else pass('lifetime', `${claims.exp - claims.iat} s, expires ${new Date(claims.exp * 1000).toISOString()}`);

if (failed > 0) {
  console.log(`REFUSED: Entra ID would refuse the exchange (HTTP 400) (${failed} rule${failed === 1 ? '' : 's'} failed)`);
  process.exit(1);
}
console.log(`ACCEPTED: Entra ID would exchange this assertion for an access token (FIC issuer ${fic.issuer}, subject ${fic.subject})`);
