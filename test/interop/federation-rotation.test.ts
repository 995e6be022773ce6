// A CA rotation in one trust domain seen from the other: A runs with a 2-minute CA (prepared at
// half life, activated at 5/6, as `ztwim server` rotates), B federates with A (refresh hint 1 min,
// so B polls every 15 s). The prepared CA reaches B's workload (its federated bundle, through B's
// refresher and B's agent) within one refresh hint, and an SDK mTLS client in A handshaking with
// an SDK mTLS server in B in a loop, across the activation and A's workload's switch to an SVID of
// the new CA, never fails.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { TrustDomain, X509Source, authorizeId, connectMtls, createMtlsServer } from '@ztwim/spiffe';
import { federatedClientAndServer } from './lib/federation.ts';
import { startStack, type Stack } from './lib/ztwim-stack.ts';
import { until } from './lib/wait.ts';

const HINT_S = 60;
const ENDPOINT = `federation {\n  bundle_endpoint {\n    address = "127.0.0.1"\n    port = 0\n    refresh_hint = "${HINT_S}s"\n  }\n}\n`;
const hex = (d: Uint8Array): string => Buffer.from(d).toString('hex');

describe('federation across a CA rotation', () => {
  let a: Stack;
  let b: Stack;
  let srcA: X509Source;
  let srcB: X509Source;
  before(async () => {
    a = await startStack({ trustDomain: 'a.test', serverExtra: `ca_ttl = "2m"\n${ENDPOINT}` });
    b = await startStack({ trustDomain: 'b.test', serverExtra: ENDPOINT });
    const { agentA, agentB } = await federatedClientAndServer(a, b);
    srcA = await X509Source.create({ address: `unix://${agentA.socketPath}` });
    srcB = await X509Source.create({ address: `unix://${agentB.socketPath}` });
    await until("A's bundle at B's workload", () => {
      try {
        return srcB.getX509BundleForTrustDomain(TrustDomain.parse('a.test')).authorities().length > 0 ? true : undefined;
      } catch {
        return undefined;
      }
    });
  });
  after(async () => {
    await srcA?.close();
    await srcB?.close();
    await a?.close();
    await b?.close();
  });

  it("the prepared CA reaches B's workload within one refresh hint; no handshake fails across the activation", async () => {
    const aAtB = (): Set<string> => new Set(srcB.getX509BundleForTrustDomain(TrustDomain.parse('a.test')).authorities().map(hex));
    const initial = (await a.server.bundle()).x509Authorities.map((x) => hex(x.asn1));
    assert.equal(initial.length, 1);

    const failures: string[] = [];
    let handshakes = 0;
    const server = createMtlsServer(srcB, authorizeId('spiffe://a.test/client'), (s) => s.end('ok'));
    server.on('mtlsRefused', (e: Error) => failures.push(`server refused: ${e.message}`));
    server.on('tlsClientError', (e: Error) => failures.push(`server TLS: ${e.message}`));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    let looping = true;
    const loop = (async () => {
      while (looping) {
        try {
          const sock: TLSSocket = await connectMtls(srcA, authorizeId('spiffe://b.test/server'), { port });
          const got = await new Promise<string>((resolve) => {
            let data = '';
            sock.on('data', (d: Buffer) => (data += d.toString()));
            sock.on('error', () => undefined);
            sock.on('close', () => resolve(data));
          });
          if (got === 'ok') handshakes++;
          else failures.push('client: connection closed without the answer');
        } catch (e) {
          failures.push(`client: ${(e as Error).message}`);
        }
        // a client connecting through the rotation is the behaviour under test: one handshake every 250 ms
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    try {
      // Prepare (half of the 2 min CA life, at a 10 s rotation tick): A's bundle gets a second CA.
      const prepared = await until(
        'A prepares its next CA',
        async () => {
          const now = (await a.server.bundle()).x509Authorities.map((x) => hex(x.asn1));
          return now.length > 1 ? { at: Date.now(), next: now.find((x) => !initial.includes(x)) ?? '' } : undefined;
        },
        150_000,
      );
      const arrived = await until("the new CA at B's workload", () => (aAtB().has(prepared.next) ? Date.now() : undefined), (HINT_S + 30) * 1000);
      const lagMs = arrived - prepared.at;
      assert.ok(lagMs <= HINT_S * 1000, `the new CA reached B's workload ${lagMs} ms after A prepared it (refresh hint ${HINT_S} s)`);
      assert.ok(aAtB().has(initial[0] ?? ''), 'the old CA is still trusted during the overlap');
      // Activation (5/6 of the life): A's workload moves to an SVID signed by the new CA.
      const nextCa = new X509Certificate(Buffer.from(prepared.next, 'hex'));
      await until(
        "A's workload holds an SVID of the new CA",
        () => {
          const leaf = srcA.getX509Svid().certificates[0];
          return leaf !== undefined && new X509Certificate(leaf).verify(nextCa.publicKey) ? true : undefined;
        },
        150_000,
      );
      const after = handshakes;
      await until('handshakes with the new SVID', () => (handshakes >= after + 4 ? true : undefined), 30_000);
      process.stdout.write(`# rotation: new CA at B's workload ${lagMs} ms after A prepared it; ${handshakes} handshakes, ${failures.length} failed\n`);
    } finally {
      looping = false;
      await loop;
      server.close();
    }
    assert.deepEqual(failures, [], 'no failed handshake');
    assert.ok(handshakes > 20, `${handshakes} handshakes`);
  });
});
