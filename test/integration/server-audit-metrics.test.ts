// audit_log_enabled (SPIRE's audit log: one "API accessed" line per Server API call) and metrics
// only where telemetry asks, on a real server over its admin socket.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { parseConfigText } from '@ztwim/core';
import { createUnixGrpcTransport, EntryService } from '@ztwim/proto';
import { buildServerConfig, startServer } from '@ztwim/server';
import { captureLogs } from '@ztwim/testkit';
import { serverConf, serverWorkspace } from '../interop/lib/server-conf.ts';

async function start(extraServerConfig: string, trailer = '') {
  const { dir, dataDir, socketPath, port } = await serverWorkspace('ztwim-audit-');
  const { log, lines } = captureLogs('info');
  const conf = serverConf({ port, socketPath, trustDomain: 'example.org', dataDir, extraServerConfig, trailer });
  const server = await startServer(buildServerConfig(parseConfigText(conf, 'hcl'), 'server.conf'), { log });
  return {
    server,
    socketPath,
    lines,
    async stop() {
      await server.close();
      dir.cleanup();
    },
  };
}

describe('server audit log and metrics', () => {
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const s of stops) await s();
  });

  it('audit_log_enabled: one "API accessed" line per call with SPIRE\'s fields, errors by code name', async () => {
    const s = await start('  audit_log_enabled = true\n');
    stops.push(() => s.stop());
    const t = createUnixGrpcTransport(s.socketPath);
    try {
      const client = createClient(EntryService, t);
      const created = await client.batchCreateEntry({
        entries: [
          {
            spiffeId: { trustDomain: 'example.org', path: '/audited' },
            parentId: { trustDomain: 'example.org', path: '/agent' },
            selectors: [{ type: 'unix', value: 'uid:1000' }],
          },
        ],
      });
      assert.equal(created.results[0]?.status?.code, 0);
      await assert.rejects(client.getEntry({ id: 'no-such-entry' }));
    } finally {
      t.close();
    }
    const audit = s.lines.filter((l) => l['msg'] === 'API accessed');
    assert.equal(audit.length, 2, JSON.stringify(audit));
    assert.deepEqual(
      { ...audit[0], time: undefined, component: undefined, subsystem: undefined },
      {
        level: 'info',
        time: undefined,
        component: undefined,
        subsystem: undefined,
        msg: 'API accessed',
        type: 'audit',
        status: 'success',
        service: 'spire.api.server.entry.v1.Entry',
        method: 'BatchCreateEntry',
        entries_count: 1,
      },
    );
    assert.equal(audit[1]?.['status'], 'error');
    assert.equal(audit[1]?.['status_code'], 'NotFound');
    assert.equal(audit[1]?.['method'], 'GetEntry');
    assert.equal(audit[1]?.['id'], 'no-such-entry');
    assert.match(String(audit[1]?.['status_message']), /not found/i);
  });

  it('without audit_log_enabled no audit line; without a telemetry block no metrics listener', async () => {
    const s = await start('');
    stops.push(() => s.stop());
    const t = createUnixGrpcTransport(s.socketPath);
    try {
      await createClient(EntryService, t).countEntries({});
    } finally {
      t.close();
    }
    assert.equal(s.lines.filter((l) => l['msg'] === 'API accessed').length, 0);
    assert.equal(s.server.metricsPort, undefined, 'SPIRE serves no metrics without telemetry { Prometheus {} }');
  });

  it('a Prometheus block serves metrics on the host it names', async () => {
    const s = await start('', 'telemetry {\n  Prometheus {\n    host = "127.0.0.1"\n    port = 0\n  }\n}\n');
    stops.push(() => s.stop());
    assert.ok(s.server.metricsPort !== undefined && s.server.metricsPort > 0);
    const res = await fetch(`http://127.0.0.1:${s.server.metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /ztwim_server_/);
    assert.ok(s.lines.some((l) => l['msg'] === 'Starting prometheus exporter' && l['host'] === '127.0.0.1'));
  });
});
