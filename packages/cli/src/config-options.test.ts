import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCaptured } from './capture.ts';
import { rootCommand } from './root.ts';

const dir = mkdtempSync(join(tmpdir(), 'ztwim-expandenv-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SERVER_CONF = `server {
  bind_address = "127.0.0.1"
  bind_port = "$SERVER_PORT"
  trust_domain = "\${TD}"
  data_dir = "${dir}/server"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${dir}/server/ds.sqlite3"
    }
  }
  KeyManager "memory" { plugin_data {} }
  NodeAttestor "join_token" { plugin_data {} }
}
`;

const AGENT_CONF = `agent {
  data_dir = "${dir}/agent"
  server_address = "127.0.0.1"
  server_port = "$SERVER_PORT"
  socket_path = "${dir}/agent.sock"
  trust_domain = "\${TD}"
  insecure_bootstrap = true
}
plugins {
  KeyManager "memory" { plugin_data {} }
  NodeAttestor "join_token" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
`;

test('-expandEnv: server and agent validate expand $VAR and ${VAR} from the environment; without it the text is literal', async () => {
  const vars = { TD: 'example.org', SERVER_PORT: '8081' };
  for (const [kind, text] of [
    ['server', SERVER_CONF],
    ['agent', AGENT_CONF],
  ] as const) {
    const conf = join(dir, `${kind}.conf`);
    writeFileSync(conf, text);
    const ok = await runCaptured(rootCommand(), [kind, 'validate', '-config', conf, '-expandEnv'], { vars, cwd: dir });
    assert.equal(ok.status, 0, `${kind}: ${ok.stderr}`);
    assert.match(ok.stdout, /Configuration is valid/);
    const literal = await runCaptured(rootCommand(), [kind, 'validate', '-config', conf], { vars, cwd: dir });
    assert.notEqual(literal.status, 0, `${kind} without -expandEnv took "$SERVER_PORT" as a port`);
    assert.match(literal.stderr, /trust_domain|port/);
  }
});
