// Federation faults end to end: a ztwim server (B) federated with another (A) and with a bundle
// endpoint this test controls (the server package's own endpoint, serving an SVID of A), driven
// through the TrustDomain API. Each bad answer (another trust domain's bundle, garbage, a key
// without `use`, a lower spiffe_sequence, the endpoint down) is refused with one
// `Error updating bundle` line naming the relationship; the last good bundle stays, failures back
// off, the server stays SERVING. Then 1,000 relationships through the API and the CLI.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient, type Client } from '@connectrpc/connect';
import { silentLogger } from '@ztwim/core';
import { captureLogs, type LogLine } from '@ztwim/testkit';
import {
  BundleService,
  createUnixGrpcTransport,
  HealthCheckResponse_ServingStatus,
  HealthService,
  SvidService,
  TrustDomainService,
  type GrpcClientTransport,
} from '@ztwim/proto';
import { startBundleEndpoint, type BundleEndpoint } from '@ztwim/server';
import { derToPem, SpiffeBundle, TrustDomain } from '@ztwim/spiffe';
import { csrFor } from '../interop/lib/authz-matrix.ts';
import { federate } from '../interop/lib/federation.ts';
import { runZtwim } from '../interop/lib/ztwim-cli.ts';
import { startStack, type Stack } from '../interop/lib/ztwim-stack.ts';
import { until } from '../interop/lib/wait.ts';

const ENDPOINT = 'federation {\n  bundle_endpoint {\n    address = "127.0.0.1"\n    port = 0\n    refresh_hint = "1m"\n  }\n}\n';

type Line = LogLine;

/** A self-signed CA naming spiffe://<td> (what a trust domain's bundle holds), DER. */
function caDer(dir: string, td: string): Uint8Array {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = join(dir, `${td}.key.pem`);
  writeFileSync(key, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return new Uint8Array(
    execFileSync('openssl', [
      'req',
      '-x509',
      '-key',
      key,
      '-subj',
      `/CN=${td}`,
      '-addext',
      `subjectAltName=URI:spiffe://${td}`,
      '-addext',
      'basicConstraints=critical,CA:true',
      '-days',
      '1',
      '-outform',
      'DER',
    ]),
  );
}

describe('federation faults: one line naming the relationship, last good bundle kept', () => {
  let a: Stack;
  let b: Stack;
  let t: GrpcClientTransport;
  let td: Client<typeof TrustDomainService>;
  let fake: BundleEndpoint;
  let served = '';
  const { log, lines } = captureLogs('info');
  const errorsFor = (trustDomain: string, from = 0): Line[] =>
    lines.slice(from).filter((l) => l['msg'] === 'Error updating bundle' && l['trust_domain'] === trustDomain);
  const stored = async (trustDomain: string): Promise<{ spiffe?: bigint; seq: bigint } | null> => {
    const got = await b.server.dataStore.getBundle(trustDomain);
    return got === null ? null : { ...(got.spiffeSequence === undefined ? {} : { spiffe: got.spiffeSequence }), seq: got.sequenceNumber };
  };
  /** One RefreshBundle; returns the error lines it produced for the relationship. */
  const refreshErrors = async (trustDomain: string): Promise<Line[]> => {
    const mark = lines.length;
    await td.refreshBundle({ trustDomain });
    return errorsFor(trustDomain, mark);
  };

  before(async () => {
    a = await startStack({ trustDomain: 'a.test', serverExtra: ENDPOINT });
    b = await startStack({ trustDomain: 'b.test' }, log);
    await federate(b, a);
    t = createUnixGrpcTransport(b.server.socketPath);
    td = createClient(TrustDomainService, t);
    // The controlled endpoint presents spiffe://a.test/fake-endpoint, an SVID A minted.
    const { csr, key } = await csrFor('spiffe://a.test/fake-endpoint');
    const at = createUnixGrpcTransport(a.server.socketPath);
    try {
      const minted = await createClient(SvidService, at).mintX509SVID({ csr, ttl: 3600 });
      fake = await startBundleEndpoint({
        host: '127.0.0.1',
        port: 0,
        tls: {
          certPem: (minted.svid?.certChain ?? []).map((d) => derToPem(d, 'CERTIFICATE')).join(''),
          keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
        },
        bundleJson: async () => served,
        log: silentLogger(),
      });
    } finally {
      at.close();
    }
  });
  after(async () => {
    t?.close();
    await fake?.close();
    await b?.close();
    await a?.close();
  });

  it('a bundle of another trust domain is refused: nothing stored for the relationship', async () => {
    // x.test's relationship points at A's endpoint: it serves a.test's bundle.
    const r = await td.batchCreateFederationRelationship({
      federationRelationships: [
        {
          trustDomain: 'x.test',
          bundleEndpointUrl: `https://127.0.0.1:${a.server.bundleEndpointPort}`,
          bundleEndpointProfile: { case: 'httpsSpiffe', value: { endpointSpiffeId: 'spiffe://a.test/spire/server' } },
        },
      ],
    });
    assert.equal(r.results[0]?.status?.code, 0, r.results[0]?.status?.message);
    await until('the first fetch of x.test', () => (errorsFor('x.test').length > 0 ? true : undefined));
    const errs = await refreshErrors('x.test');
    assert.equal(errs.length, 1, 'one line per refused fetch');
    assert.equal(errs[0]?.['bundle_endpoint_url'], `https://127.0.0.1:${a.server.bundleEndpointPort}`);
    assert.match(String(errs[0]?.['error']), /bundle of trust domain "a\.test", expected "x\.test"/);
    assert.equal(await stored('x.test'), null);
    await assert.rejects(createClient(BundleService, t).getFederatedBundle({ trustDomain: 'x.test' }), /not found/i);
  });

  it('garbage, a key without use and a lower spiffe_sequence are refused; the last good bundle stays', async () => {
    const ca = caDer(b.tmp.path, 'f.test');
    const bundle = (seq: bigint): string =>
      SpiffeBundle.fromParts(TrustDomain.parse('f.test'), { x509: [ca], sequenceNumber: seq, refreshHintSeconds: 3600 }).marshal();
    served = bundle(5n);
    const url = `https://127.0.0.1:${fake.port}`;
    const r = await td.batchCreateFederationRelationship({
      federationRelationships: [
        {
          trustDomain: 'f.test',
          bundleEndpointUrl: url,
          bundleEndpointProfile: { case: 'httpsSpiffe', value: { endpointSpiffeId: 'spiffe://a.test/fake-endpoint' } },
        },
      ],
    });
    assert.equal(r.results[0]?.status?.code, 0, r.results[0]?.status?.message);
    await td.refreshBundle({ trustDomain: 'f.test' });
    const good = await stored('f.test');
    assert.equal(good?.spiffe, 5n);
    const noUse = JSON.parse(served) as { keys: Array<Record<string, unknown>> };
    for (const k of noUse.keys) delete k['use'];
    const cases: Array<[string, string, RegExp]> = [
      ['garbage', '{"keys": [ this is not json', /JSON|json|Unexpected|parse/],
      ['missing use', JSON.stringify(noUse), /missing use/],
      ['sequence downgrade', bundle(4n), /spiffe_sequence went down from 5 to 4/],
    ];
    for (const [what, body, re] of cases) {
      served = body;
      const errs = await refreshErrors('f.test');
      assert.equal(errs.length, 1, `${what}: one line`);
      assert.equal(errs[0]?.['bundle_endpoint_url'], url, what);
      assert.match(String(errs[0]?.['error']), re, what);
      assert.deepEqual(await stored('f.test'), good, `${what}: the last good bundle stays`);
    }
    served = bundle(6n);
    assert.deepEqual(await refreshErrors('f.test'), []);
    assert.equal((await stored('f.test'))?.spiffe, 6n, 'a good answer is taken again');
  });

  it('endpoint down: the bundle stays, retries back off, the server stays SERVING', async () => {
    const before = await stored('a.test');
    assert.ok(before !== null);
    await a.stopServer();
    const seen = lines.length;
    for (let i = 0; i < 3; i++) assert.equal((await refreshErrors('a.test')).length, 1);
    const errs = errorsFor('a.test', seen);
    for (const e of errs) assert.match(String(e['error']), /ECONNREFUSED|failed to fetch bundle/);
    // The wait doubles with each consecutive failure (base: a quarter of A's 1 min hint), up to 8x.
    const waits = errs.map((e) => Number(e['retry_in_ms']));
    assert.ok(waits[0] !== undefined && waits[0] >= 15_000, `first retry ${waits[0]}`);
    for (let i = 1; i < waits.length; i++) assert.equal(waits[i], Math.min((waits[i - 1] ?? 0) * 2, 120_000), `waits ${waits.join(', ')}`);
    assert.deepEqual(await stored('a.test'), before, 'the last good bundle stays');
    const health = await createClient(HealthService, t).check({});
    assert.equal(health.status, HealthCheckResponse_ServingStatus.SERVING);
  });

  it("1,000 relationships: created through the API, listed in SPIRE's pages, shown by the CLI", async () => {
    const n = 1000;
    const name = (i: number): string => `r${String(i).padStart(4, '0')}.test`;
    for (let i = 0; i < n; i += 250) {
      const r = await td.batchCreateFederationRelationship({
        federationRelationships: Array.from({ length: 250 }, (_, j) => ({
          trustDomain: name(i + j),
          // Nothing listens on port 1: every fetch fails at once, as for unreachable peers.
          bundleEndpointUrl: `https://127.0.0.1:1/${name(i + j)}`,
          bundleEndpointProfile: { case: 'httpsWeb' as const, value: {} },
        })),
      });
      assert.deepEqual(
        r.results.filter((x) => x.status?.code !== 0).map((x) => x.status?.message),
        [],
      );
    }
    const all: string[] = [];
    let token = '';
    let pages = 0;
    do {
      const page = await td.listFederationRelationships({ pageSize: 300, pageToken: token });
      assert.ok(page.federationRelationships.length <= 300);
      all.push(...page.federationRelationships.map((x) => x.trustDomain));
      token = page.nextPageToken;
      pages++;
    } while (token !== '');
    const expected = ['a.test', 'f.test', ...Array.from({ length: n }, (_, i) => name(i)), 'x.test'].sort();
    assert.deepEqual([...all].sort(), expected);
    assert.equal(new Set(all).size, all.length, 'no relationship on two pages');
    assert.ok(pages >= 4, `${pages} pages of 300`);
    assert.equal((await td.listFederationRelationships({})).federationRelationships.length, n + 3, 'page_size 0: everything');
    const cli = await runZtwim(b.tmp.path, ['server', 'federation', 'list', '-socketPath', b.server.socketPath]);
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`^Found ${n + 3} federation relationships\\n`));
    const show = await runZtwim(b.tmp.path, ['server', 'federation', 'show', '-trustDomain', name(777), '-socketPath', b.server.socketPath]);
    assert.equal(show.status, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`Trust domain\\s+: ${name(777).replace('.', '\\.')}\\n`));
    assert.match(show.stdout, /Bundle endpoint profile\s+: https_web\n/);
    // Every relationship is refreshed (and refused) on its own: one line each, naming it.
    await until(
      'a refused fetch for every relationship',
      () => {
        const named = new Set(lines.filter((l) => l['msg'] === 'Error updating bundle').map((l) => String(l['trust_domain'])));
        return Array.from({ length: n }, (_, i) => name(i)).every((x) => named.has(x)) ? true : undefined;
      },
      120_000,
    );
    const health = await createClient(HealthService, t).check({});
    assert.equal(health.status, HealthCheckResponse_ServingStatus.SERVING);
  });
});
