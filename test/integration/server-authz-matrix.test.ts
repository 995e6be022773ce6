// Every Server API method × every kind of caller against ztwim's server on its real admin
// socket and TLS port, checked against SPIRE's authorization policy (lib/authz-matrix.ts; the
// same matrix is compared with a real SPIRE server in test/interop/server-authz-vs-spire.test.ts).
// Agent SVIDs calling admin methods, downstream SVIDs calling admin methods, Debug/GetInfo from
// a TLS caller and workload SVIDs calling agent methods are all cells here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CALLER_KINDS, SERVICES, adminSocketReach, authzMatrix, differences, expectedVerdict, fullName } from '../interop/lib/authz-matrix.ts';
import { startZtwimAdminServer } from '../interop/lib/ztwim-server.ts';

const TD = 'example.org';

describe('ztwim server authorization: every method × every caller kind', () => {
  it('matches SPIRE policy in every cell', async () => {
    const m = await authzMatrix({ trustDomain: TD, start: (extra) => startZtwimAdminServer({ trustDomain: TD, extraServerConfig: extra }) });
    assert.deepEqual([...m.keys()].sort(), [...CALLER_KINDS].sort());
    const methods = SERVICES.flatMap((s) => s.methods.map((x) => fullName(s, x)));
    for (const [caller, cells] of m) assert.deepEqual([...cells.keys()].sort(), [...methods].sort(), caller);
    assert.deepEqual(differences(m, expectedVerdict), []);
  });

  it(
    'the admin socket is reachable by root and not by nobody (socket 0770, owner root)',
    { skip: process.getuid?.() !== 0 ? 'needs root to run a child as nobody' : false },
    async () => {
      const srv = await startZtwimAdminServer({ trustDomain: TD });
      try {
        assert.deepEqual(await adminSocketReach(srv.socketPath), { root: 'connected', nobody: 'EACCES' });
      } finally {
        await srv.stop();
      }
    },
  );
});
