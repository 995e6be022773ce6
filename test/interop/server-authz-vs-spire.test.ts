// The authorization matrix of lib/authz-matrix.ts (every Server API method × every caller kind)
// run against the real SPIRE v1.13.0 server and against ztwim's: SPIRE must match the policy
// table the ztwim test uses, and ztwim must agree with SPIRE cell by cell (allowed = got past
// authorization; denied = PermissionDenied, Unauthenticated or a refused TLS handshake).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adminSocketReach, authzMatrix, differences, expectedVerdict, type Matrix } from './lib/authz-matrix.ts';
import { startSpireAdminServer } from './lib/spire-admin.ts';
import { startZtwimAdminServer } from './lib/ztwim-server.ts';

const TD = 'example.org';

describe('Server API authorization: ztwim and SPIRE v1.13.0 agree on every method × caller cell', () => {
  let spire: Matrix;

  it('SPIRE answers as its policy table says (the expected column of the ztwim test)', async () => {
    spire = await authzMatrix({ trustDomain: TD, start: (extra) => startSpireAdminServer({ trustDomain: TD, extraServerConfig: extra }) });
    assert.deepEqual(differences(spire, expectedVerdict), []);
  });

  it('ztwim answers as SPIRE does, cell by cell', async (t) => {
    assert.ok(spire !== undefined, 'the SPIRE matrix was not computed');
    const ztwim = await authzMatrix({ trustDomain: TD, start: (extra) => startZtwimAdminServer({ trustDomain: TD, extraServerConfig: extra }) });
    const fromSpire = (caller: Parameters<typeof expectedVerdict>[0], method: string) => {
      const cell = spire.get(caller)?.get(method);
      assert.ok(cell !== undefined, `SPIRE has no cell ${caller} × ${method}`);
      return cell.verdict;
    };
    assert.deepEqual(differences(ztwim, fromSpire), []);
    // Not asserted (the verdict is): where the two refuse with different PermissionDeniedDetails.
    for (const [caller, cells] of ztwim) {
      for (const [method, cell] of cells) {
        const other = spire.get(caller)?.get(method);
        const reasonOf = (d: string): string => /\[(\w+)\]$/.exec(d)?.[1] ?? '-';
        if (cell.verdict === 'denied' && other !== undefined && reasonOf(cell.detail) !== reasonOf(other.detail)) {
          t.diagnostic(`reason differs: ${caller} × ${method}: ztwim ${reasonOf(cell.detail)}, SPIRE ${reasonOf(other.detail)} (${other.detail})`);
        }
      }
    }
  });

  it(
    'the admin socket: root connects, nobody does not, on both servers',
    { skip: process.getuid?.() !== 0 ? 'needs root to run a child as nobody' : false },
    async () => {
      for (const start of [() => startSpireAdminServer({ trustDomain: TD }), () => startZtwimAdminServer({ trustDomain: TD })]) {
        const srv = await start();
        try {
          assert.deepEqual(await adminSocketReach(srv.socketPath), { root: 'connected', nobody: 'EACCES' });
        } finally {
          await srv.stop();
        }
      }
    },
  );
});
