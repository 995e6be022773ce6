// The operator's rendered configs against the programs that read them: server.conf and agent.conf
// rendered for SPIRE images must pass SPIRE v1.13.0's own `spire-server validate` /
// `spire-agent validate`; rendered for ztwim images they must pass `ztwim server validate`,
// `ztwim agent validate` and `ztwim oidc validate`. Several CR sets: both fixture shapes,
// federation, PostgreSQL from a Secret (-expandEnv), in-memory keys, each kubelet verification,
// a kubelet on another port.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { renderOperands, type CrSet, type RenderContext } from '@ztwim/operator';
import { opensslCert } from '@ztwim/testkit';
import { crs0_2, crs1_0, minimalSet } from '../../packages/operator/src/testdata/fixtures.ts';
import { spireAgentBin, spireServerBin, ZTWIM_BIN } from './lib/peers.ts';
import { runBinary } from './lib/spire-admin.ts';
import { runZtwim } from './lib/ztwim-cli.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';

const NS = 'zero-trust-workload-identity-manager';
const DSN_ENV = { ZTWIM_DATASTORE_CONNECTION_STRING: 'postgres://spire:secret@db.example.org:5432/spire?sslmode=disable' };

const SETS: Record<string, () => CrSet> = {
  'the 1.0 fixture': crs1_0,
  'the 0.2 fixture': crs0_2,
  federation: () =>
    minimalSet({
      server: {
        federation: {
          bundleEndpoint: { profile: 'https_spiffe', refreshHint: 120 },
          federatesWith: [
            {
              trustDomain: 'partner.org',
              bundleEndpointUrl: 'https://spire.partner.org:8443',
              bundleEndpointProfile: 'https_spiffe',
              endpointSpiffeId: 'spiffe://partner.org/spire/server',
            },
            { trustDomain: 'web.org', bundleEndpointUrl: 'https://bundle.web.org/', bundleEndpointProfile: 'https_web' },
          ],
        },
      },
    }),
  'federation https_web with ACME': () =>
    minimalSet({
      server: {
        federation: {
          bundleEndpoint: {
            profile: 'https_web',
            httpsWeb: {
              acme: { directoryUrl: 'https://acme.example.org/dir', domainName: 'federation.example.org', email: 'ops@example.org', tosAccepted: 'true' },
            },
          },
        },
      },
    }),
  'federation https_web with a serving certificate': () =>
    minimalSet({ server: { federation: { bundleEndpoint: { profile: 'https_web', httpsWeb: { servingCert: { fileSyncInterval: 3600 } } } } } }),
  'postgres from a Secret, memory keys, 3 replicas': () =>
    minimalSet({
      server: {
        replicas: 3,
        keyManager: { diskEnabled: 'false', memoryEnabled: 'true' },
        datastore: { databaseType: 'postgres', connectionStringSecretRef: { name: 'spire-db' }, maxOpenConns: 20, maxIdleConns: 5, connMaxLifetime: 600 },
      },
    }),
  'hostCert verification, no container selectors': () =>
    minimalSet({
      agent: {
        workloadAttestors: {
          k8sEnabled: 'true',
          disableContainerSelectors: 'true',
          workloadAttestorsVerification: { type: 'hostCert', hostCertBasePath: '/etc/kubernetes/pki', hostCertFileName: 'ca.crt' },
        },
      },
    }),
  'apiServerCA verification, json logs': () =>
    minimalSet({
      agent: { logLevel: 'debug', logFormat: 'json', workloadAttestors: { k8sEnabled: 'true', workloadAttestorsVerification: { type: 'apiServerCA' } } },
    }),
  'auto verification': () => minimalSet({ agent: { workloadAttestors: { k8sEnabled: 'true' } } }),
  'kubelet on port 26250 (KUBELET_SECURE_PORT)': minimalSet,
  'an issuer with a port and a path': () =>
    minimalSet({ server: { jwtIssuer: 'https://localhost:18443/oidc' }, oidc: { jwtIssuer: 'https://localhost:18443/oidc' } }),
};
/** Render-context settings of some sets (the operator's environment). */
const CTX: Record<string, Omit<RenderContext, 'namespace'>> = { 'kubelet on port 26250 (KUBELET_SECURE_PORT)': { kubeletSecurePort: 26250 } };

/** `bin args` with `env` added: its exit status and stdout+stderr together. */
const run = async (bin: string, args: string[], env: Record<string, string> = {}): Promise<{ status: number; out: string }> => {
  const r = await runBinary(bin, args, { env });
  return { status: r.status, out: r.stdout + r.stderr };
};

function render(set: CrSet, ctx: Omit<RenderContext, 'namespace'>) {
  const r = renderOperands(set, { namespace: NS, ...ctx });
  for (const [k, cs] of Object.entries(r.conditions)) {
    const bad = cs.find((c) => c.status === 'False');
    assert.equal(bad, undefined, `${k}: ${bad?.message ?? ''}`);
  }
  const { serverConf, agentConf, oidcConf } = r.configs;
  assert.ok(serverConf !== undefined && agentConf !== undefined && oidcConf !== undefined);
  return { serverConf, agentConf, oidcConf };
}

describe('rendered configs for SPIRE images: SPIRE v1.13.0 validate', () => {
  let dir: TmpDir;
  before(() => {
    dir = makeTmpDir('ztwim-operator-render-');
    // spire-server validate loads the https_web serving certificate: one where the pod mounts the Secret
    opensslCert({ dir: dir.path, file: 'server-tls', subject: '/CN=federation.example.org' });
  });
  after(() => dir?.cleanup());
  for (const [name, set] of Object.entries(SETS)) {
    test(name, async () => {
      const rendered = render(set(), { variant: 'spire', ...CTX[name] });
      const serverConf = rendered.serverConf
        .replace('/run/spire/server-tls/tls.crt', dir.file('server-tls.pem'))
        .replace('/run/spire/server-tls/tls.key', dir.file('server-tls.key'));
      const agentConf = rendered.agentConf;
      const s = await run(spireServerBin(), ['validate', '-expandEnv', '-config', dir.write(`server-${name}.conf`, serverConf)], DSN_ENV);
      assert.equal(s.status, 0, `spire-server validate:\n${s.out}\n${serverConf}`);
      assert.match(s.out, /SPIRE server configuration file is valid/);
      const a = await run(spireAgentBin(), ['validate', '-config', dir.write(`agent-${name}.conf`, agentConf)]);
      assert.equal(a.status, 0, `spire-agent validate:\n${a.out}\n${agentConf}`);
      assert.match(a.out, /SPIRE agent configuration file is valid/);
    });
  }
});

describe('rendered configs for ztwim images: ztwim validate', () => {
  let dir: TmpDir;
  before(() => {
    dir = makeTmpDir('ztwim-operator-render-');
  });
  after(() => dir?.cleanup());
  for (const [name, set] of Object.entries(SETS)) {
    test(name, async () => {
      const { serverConf, agentConf, oidcConf } = render(set(), { variant: 'ztwim', ...CTX[name] });
      const a = await runZtwim(dir.path, ['agent', 'validate', '-config', dir.write(`agent-${name}.conf`, agentConf)]);
      assert.equal(a.status, 0, `ztwim agent validate:\n${a.stderr}\n${agentConf}`);
      assert.match(a.stdout, /Configuration is valid/);
      const o = await runZtwim(dir.path, ['oidc', 'validate', '-config', dir.write(`oidc-${name}.conf`, oidcConf)]);
      assert.equal(o.status, 0, `ztwim oidc validate:\n${o.stderr}\n${oidcConf}`);
      const file = dir.write(`server-${name}.conf`, serverConf);
      const s = await run(process.execPath, [ZTWIM_BIN, 'server', 'validate', '-expandEnv', '-config', file], DSN_ENV);
      assert.equal(s.status, 0, `ztwim server validate:\n${s.out}\n${serverConf}`);
      assert.match(s.out, /Configuration is valid/);
    });
  }
});
