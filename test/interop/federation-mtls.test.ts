// Two ztwim trust domains federated end to end: each server fetches the other's bundle endpoint
// (https_spiffe), the agents carry the foreign bundle to workloads whose entries federate with it,
// and a go-spiffe spiffetls client in A and server in B complete mTLS with those bundles.
// `ztwim api fetch x509 -write` writes the federated bundle as spire-agent does.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { createUnixGrpcTransport, SvidService } from '@ztwim/proto';
import { pemToDerList } from '@ztwim/spiffe';
import { federatedClientAndServer } from './lib/federation.ts';
import { goBuild } from './lib/peers.ts';
import { startStack, type Stack } from './lib/ztwim-stack.ts';
import { runZtwim } from './lib/ztwim-cli.ts';
import { until } from './lib/wait.ts';

const run = promisify(execFile);
const ENDPOINT = 'federation {\n  bundle_endpoint {\n    address = "127.0.0.1"\n    port = 0\n    refresh_hint = "1m"\n  }\n}\n';

describe('federation end to end: two ztwim trust domains, go-spiffe mTLS across them', () => {
  let a: Stack;
  let b: Stack;
  let sockA = '';
  let sockB = '';
  before(async () => {
    a = await startStack({ trustDomain: 'a.test', serverExtra: ENDPOINT });
    b = await startStack({ trustDomain: 'b.test', serverExtra: ENDPOINT });
    const { agentA, agentB } = await federatedClientAndServer(a, b);
    sockA = agentA.socketPath;
    sockB = agentB.socketPath;
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  it("a workload in B gets A's bundle as a federated bundle (ztwim api fetch x509 -write)", async () => {
    const dir = join(b.tmp.path, 'fetched');
    const ownA = (await a.server.bundle()).x509Authorities.map((x) => Buffer.from(x.asn1).toString('hex'));
    const out = await until('federated bundle at the workload', async () => {
      const r = await runZtwim(b.tmp.path, ['api', 'fetch', 'x509', '-socketPath', sockB, '-write', dir]);
      return r.status === 0 && r.stdout.includes('federated_bundle.0.0.pem') ? r : undefined;
    });
    assert.match(out.stdout, /\[spiffe:\/\/a\.test\] CA #1 Valid After:\t/);
    assert.match(
      out.stdout,
      new RegExp(`Writing federated bundle #0 for trust domain spiffe://a\\.test to file ${join(dir, 'federated_bundle.0.0.pem').replace(/[.]/g, '\\.')}\\.`),
    );
    const written = pemToDerList(readFileSync(join(dir, 'federated_bundle.0.0.pem'), 'utf8')).map((d) => Buffer.from(d).toString('hex'));
    assert.deepEqual(written.sort(), ownA.sort());
  });

  it('a go-spiffe spiffetls client in A and server in B complete mTLS with the federated bundles', async () => {
    const bin = goBuild('test/interop/go', './fedmtls');
    const res = await until(
      'mTLS across trust domains',
      async () => {
        try {
          const { stdout } = await run(bin, [`unix://${sockB}`, `unix://${sockA}`], { timeout: 60_000 });
          return JSON.parse(stdout) as { server_id: string; client_id: string; server_saw_id: string; echo: string; wrong_peer_error: string };
        } catch {
          return undefined;
        }
      },
      60_000,
    );
    assert.equal(res.server_id, 'spiffe://b.test/server');
    assert.equal(res.client_id, 'spiffe://a.test/client');
    assert.equal(res.server_saw_id, 'spiffe://a.test/client');
    assert.equal(res.echo, 'echo hello from A\n');
    assert.match(res.wrong_peer_error, /unexpected ID|spiffe:\/\/b\.test\/server/);
  });

  it("a JWT-SVID minted in A validates in B through B's Workload API; one of a domain B does not federate with is refused", async () => {
    const aud = 'spiffe://b.test/server';
    const jwt = await a.workload(sockA).fetchJWTSVID({ audience: [aud] });
    const token = jwt.svids[0]?.svid ?? '';
    assert.equal(jwt.svids[0]?.spiffeId, 'spiffe://a.test/client');
    const ok = await until("A's JWT bundle at B's agent", async () =>
      b
        .workload(sockB)
        .validateJWTSVID({ audience: aud, svid: token })
        .catch(() => undefined),
    );
    assert.equal(ok.spiffeId, 'spiffe://a.test/client');
    assert.deepEqual(
      Object.keys(ok.claims ?? {}).sort(),
      ['aud', 'exp', 'sub'],
      'foreign claims: sub, exp, aud only (SPIRE without allowed_foreign_jwt_claims)',
    );
    await assert.rejects(b.workload(sockB).validateJWTSVID({ audience: 'someone-else', svid: token }), /audience/);
    // C: a third trust domain neither B nor B's workload federates with.
    const c = await startStack({ trustDomain: 'c.test' });
    const t = createUnixGrpcTransport(c.server.socketPath);
    try {
      const minted = await createClient(SvidService, t).mintJWTSVID({ id: { trustDomain: 'c.test', path: '/intruder' }, audience: [aud] });
      await assert.rejects(b.workload(sockB).validateJWTSVID({ audience: aud, svid: minted.svid?.token ?? '' }), /c\.test/);
    } finally {
      t.close();
      await c.close();
    }
  });
});
