import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { TrustDomain } from '../id/trust-domain.ts';
import { isSpiffeError } from '../errors.ts';
import { WorkloadApiClient, WorkloadApiError, linearBackoff } from './client.ts';
import { X509Source } from './x509-source.ts';
import { JwtSource } from './jwt-source.ts';
import { BundleSource } from './bundle-source.ts';
import { FakeWorkloadApi, makeJwtIssuer, makeTestCa } from '../testdata/fake-workload-api.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-src-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const TD = TrustDomain.parse('example.org');

async function setup(name: string) {
  const ca = await makeTestCa('example.org');
  const fed = await makeTestCa('fed.example');
  const a = await ca.issue('/a');
  const jwt = await makeJwtIssuer(`src-${name}`);
  const federated = { 'spiffe://fed.example': fed.root.der };
  const fake = new FakeWorkloadApi(join(dir, `${name}.sock`), {
    x509Svids: [a],
    federated,
    x509Bundles: { 'spiffe://example.org': ca.root.der },
    jwtBundles: { 'spiffe://example.org': jwt.jwks },
  });
  await fake.start();
  const client = new WorkloadApiClient({ address: fake.address, backoff: () => linearBackoff(20, 100) });
  return {
    ca,
    a,
    federated,
    fake,
    client,
    async done() {
      client.close();
      await fake.stop();
    },
  };
}

/** Collects a source's errors; `next(pred)` resolves with the first (past or future) error matching. */
function errorLog() {
  const seen: WorkloadApiError[] = [];
  const waiters: Array<{ pred: (e: WorkloadApiError) => boolean; resolve: (e: WorkloadApiError) => void }> = [];
  return {
    onError(e: WorkloadApiError): void {
      seen.push(e);
      for (const w of [...waiters])
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
    },
    next(pred: (e: WorkloadApiError) => boolean): Promise<WorkloadApiError> {
      const i = seen.findIndex(pred);
      if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0] as WorkloadApiError);
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
    clear(): void {
      seen.length = 0;
    },
  };
}

/** A withdrawn identity: a typed WorkloadApiError (ERR_WORKLOAD_API, PermissionDenied) naming the cause. */
const withdrawn = (e: unknown): boolean =>
  e instanceof WorkloadApiError &&
  isSpiffeError(e, 'ERR_WORKLOAD_API') &&
  e.grpcCode === Code.PermissionDenied &&
  e.grpcMessage === 'no identity issued' &&
  e.cause instanceof WorkloadApiError &&
  /identity withdrawn by the Workload API: no identity issued/.test(e.message);
const nextUpdate = (src: { onUpdate(cb: () => void): () => void }): Promise<void> =>
  new Promise((r) => {
    const off = src.onUpdate(() => {
      off();
      r();
    });
  });

test('Workload API §5.2.1: after PermissionDenied the sources stop serving until an identity is issued again', async () => {
  const s = await setup('denied');
  const xl = errorLog();
  const jl = errorLog();
  const bl = errorLog();
  const x = await X509Source.create({ client: s.client, onError: xl.onError });
  const j = await JwtSource.create({ client: s.client, onError: jl.onError });
  const b = await BundleSource.create({ client: s.client, onError: bl.onError });
  try {
    assert.equal(x.getX509Svid().id.toString(), 'spiffe://example.org/a');
    const denied = (e: WorkloadApiError): boolean => e.grpcCode === Code.PermissionDenied;
    s.fake.update({ x509Error: new ConnectError('no identity issued', Code.PermissionDenied) });
    // Each source says so through its error callback...
    await Promise.all([xl.next(denied), jl.next(denied), bl.next(denied)]);
    // ...and hands out nothing any more: not the SVID, not the bundles.
    assert.throws(() => x.getX509Svid(), withdrawn);
    assert.throws(() => x.getX509Svids(), withdrawn);
    assert.throws(() => x.getX509BundleForTrustDomain(TD), withdrawn);
    assert.throws(() => x.allAuthorities(), withdrawn);
    assert.throws(() => j.getJwtBundleForTrustDomain(TD), withdrawn);
    assert.throws(() => b.getX509BundleForTrustDomain(TD), withdrawn);
    assert.throws(() => b.getJwtBundleForTrustDomain(TD), withdrawn);
    // The watches keep retrying; once the Workload API issues an identity again, they serve it.
    const back = Promise.all([nextUpdate(x), nextUpdate(j), nextUpdate(b)]);
    const { x509Error: _drop, ...rest } = s.fake.state;
    s.fake.state = { ...rest, x509Svids: [await s.ca.issue('/again')] };
    await back;
    assert.equal(x.getX509Svid().id.toString(), 'spiffe://example.org/again');
    assert.ok(j.getJwtBundleForTrustDomain(TD).authorities().size > 0);
    assert.equal(b.getX509BundleForTrustDomain(TD).authorities().length, 1);
  } finally {
    await Promise.all([x.close(), j.close(), b.close()]);
    await s.done();
  }
});

/**
 * One kind of bad X509-SVID update: the source must report it through onError, keep serving the
 * SVID and bundle it had, and still adopt the next good update.
 */
function badUpdateTest(
  title: string,
  bad: (s: Awaited<ReturnType<typeof setup>>, clock: { at: number }) => Promise<Partial<Awaited<ReturnType<typeof setup>>['fake']['state']>>,
  reported: RegExp,
): void {
  test(title, async () => {
    const s = await setup(`bad-${title.replace(/[^a-z]+/gi, '-').slice(-40)}`);
    const log = errorLog();
    const clock = { at: Date.now() };
    const src = await X509Source.create({ client: s.client, now: () => new Date(clock.at), onError: log.onError });
    try {
      const outcome = Promise.race([log.next(() => true), nextUpdate(src).then(() => 'adopted' as const)]);
      s.fake.update({ federated: s.federated, ...(await bad(s, clock)) });
      const e = await outcome;
      assert.notEqual(e, 'adopted', 'the bad update was adopted');
      assert.ok(e instanceof WorkloadApiError);
      assert.match(e.message, reported);
      // The previous SVID and bundle are still served, at the source's clock too.
      assert.equal(src.getX509Svid().id.toString(), 'spiffe://example.org/a');
      assert.deepEqual(src.getX509Svid().certificates, s.a.certs);
      assert.deepEqual(src.getX509BundleForTrustDomain(TD).authorities(), [s.ca.root.der]);
      // The watch goes on: the next good update is adopted.
      clock.at = Date.now();
      const adopted = nextUpdate(src);
      s.fake.update({ x509Svids: [await s.ca.issue('/b')], federated: s.federated });
      await adopted;
      assert.equal(src.getX509Svid().id.toString(), 'spiffe://example.org/b');
    } finally {
      await src.close();
      await s.done();
    }
  });
}

badUpdateTest(
  'X509-SVID §5.1, Workload API §5.2.1: an update whose SVID does not chain to the bundle in the same response is refused',
  async (s) => ({ x509Svids: [{ ...(await (await makeTestCa('example.org', 'rogue-chain')).issue('/rogue')), bundle: s.ca.root.der }] }),
  /refused update: x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority/,
);

badUpdateTest(
  'X509-SVID §5.1, Workload API §4.6: an update with a second, different bundle for the SVID trust domain is refused',
  async (s) => ({
    x509Svids: [await s.ca.issue('/b')],
    federated: { ...s.federated, 'spiffe://example.org': (await makeTestCa('example.org', 'rogue-fed')).root.der },
  }),
  /conflicting X\.509 bundles for trust domain "example\.org"/,
);

badUpdateTest(
  'X509-SVID §5.1: an update whose SVID is outside its validity window at the source clock is refused',
  async (s, clock) => {
    clock.at = Date.now() + 2 * 3600_000;
    return { x509Svids: [await s.ca.issue('/b')] };
  },
  /refused update: x509svid: could not verify leaf certificate: x509: certificate has expired or is not yet valid: current time .* is after /,
);

badUpdateTest(
  'X509-SVID §5.1: an update whose SVID is not yet valid at the source clock is refused',
  async (s, clock) => {
    clock.at = Date.now() - 2 * 3600_000;
    return { x509Svids: [await s.ca.issue('/b')] };
  },
  /refused update: x509svid: could not verify leaf certificate: x509: certificate has expired or is not yet valid: current time .* is before /,
);

badUpdateTest(
  "Workload API §4.5, §5.2.1: an update whose spiffe_id differs from the certificate's URI SAN is refused",
  async (s) => ({ x509Svids: [{ ...(await s.ca.issue('/b')), spiffeId: 'spiffe://example.org/admin' }] }),
  /spiffe_id "spiffe:\/\/example\.org\/admin" does not match its certificate's URI SAN "spiffe:\/\/example\.org\/b"/,
);

badUpdateTest(
  'Workload API §4.5, §5.2.1: an update whose private key does not match the certificate is refused',
  async (s) => ({ x509Svids: [{ ...(await s.ca.issue('/b')), key: s.a.key }] }),
  /private key validation failed: leaf certificate does not match private key/,
);

test('X509Source.create waits for an update that verifies', async () => {
  const s = await setup('first');
  const rogueCa = await makeTestCa('example.org', 'rogue-first');
  s.fake.state = { ...s.fake.state, x509Svids: [{ ...(await rogueCa.issue('/rogue')), bundle: s.ca.root.der }] };
  const log = errorLog();
  const pending = X509Source.create({ client: s.client, onError: log.onError });
  const first = await Promise.race([log.next((e) => /refused update/.test(e.message)), pending.then(() => 'adopted' as const)]);
  assert.notEqual(first, 'adopted', 'create() resolved with an SVID that does not verify');
  s.fake.update({ x509Svids: [s.a] });
  const src = await pending;
  try {
    assert.equal(src.getX509Svid().id.toString(), 'spiffe://example.org/a');
  } finally {
    await src.close();
    await s.done();
  }
});
