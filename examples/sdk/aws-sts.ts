// A JWT-SVID as the web identity token of AWS STS AssumeRoleWithWebIdentity: the workload trades
// its SPIFFE identity for temporary AWS credentials, no AWS secret stored anywhere.
//
//   SPIFFE_ENDPOINT_SOCKET=unix:///tmp/spire-agent/public/api.sock \
//   AWS_ROLE_ARN=arn:aws:iam::123456789012:role/spiffe-demo npx tsx aws-sts.ts
//
// On AWS: an IAM OIDC identity provider for the trust domain's OIDC discovery issuer (public
// https URL, `ztwim oidc`), with audience sts.amazonaws.com, and a role whose trust policy allows
// sts:AssumeRoleWithWebIdentity for that provider with conditions on `<issuer>:aud` and
// `<issuer>:sub` (the SPIFFE ID). AssumeRoleWithWebIdentity is an unsigned call, so plain fetch
// does; the AWS SDKs do the same from a token file (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN).
//
// AWS_STS_ENDPOINT points it elsewhere: the project's test runs it against moto's STS server,
// which answers with made-up credentials and does NOT verify the token's signature or claims; the
// test checks instead that the request carried the JWT-SVID as WebIdentityToken.
import { JwtSource } from '@ztwim/spiffe';

const ROLE_ARN = process.env['AWS_ROLE_ARN'] ?? 'arn:aws:iam::123456789012:role/spiffe-demo';
const ENDPOINT = process.env['AWS_STS_ENDPOINT'] ?? 'https://sts.amazonaws.com/';
const AUDIENCE = process.env['AWS_AUDIENCE'] ?? 'sts.amazonaws.com';

const jwtSource = await JwtSource.create();
try {
  const svid = await jwtSource.fetchJwtSvid({ audience: AUDIENCE });
  console.log(`JWT-SVID for ${svid.id.toString()}, audience ${svid.audience.join(',')}, expires ${svid.expiry.toISOString()}`);
  // RoleSessionName: 2-64 characters of [\w+=,.@-]; the SPIFFE ID's path, made to fit.
  const session =
    svid.id.path
      .replace(/[^\w+=,.@-]/g, '-')
      .replace(/^-+/, '')
      .slice(0, 64) || 'spiffe';
  const res = await fetch(ENDPOINT, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/xml' },
    body: new URLSearchParams({
      Action: 'AssumeRoleWithWebIdentity',
      Version: '2011-06-15',
      RoleArn: ROLE_ARN,
      RoleSessionName: session,
      WebIdentityToken: svid.marshal(),
      DurationSeconds: '900',
    }),
  });
  const xml = await res.text();
  const tag = (name: string): string | undefined => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
  if (!res.ok) throw new Error(`STS refused AssumeRoleWithWebIdentity: ${res.status} ${tag('Code') ?? ''} ${tag('Message') ?? xml}`);
  console.log(`assumed ${tag('Arn') ?? '?'} (session ${session}): AccessKeyId ${tag('AccessKeyId') ?? '?'}, expires ${tag('Expiration') ?? '?'}`);
} finally {
  await jwtSource.close();
}
