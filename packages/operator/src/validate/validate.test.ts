import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalize, type CrSet, type OperandKey } from '../api/normalize.ts';
import { cr, crs0_2, crs1_0, minimalSet } from '../testdata/fixtures.ts';
import { reasonFor } from './schema-check.ts';
import { validate, type ValidateOptions } from './validate.ts';

const run = (set: CrSet, opts?: ValidateOptions) => validate(set, normalize(set), opts);
/** The ConfigurationValid condition of one operand. */
function configValid(set: CrSet, key: OperandKey, opts?: ValidateOptions) {
  const c = run(set, opts).conditions[key]?.find((x) => x.type === 'ConfigurationValid');
  assert.ok(c, `no ConfigurationValid on ${key}`);
  return c;
}
function invalid(set: CrSet, key: OperandKey, reason: string, field: RegExp, opts?: ValidateOptions): void {
  const c = configValid(set, key, opts);
  assert.equal(c.status, 'False', `${key}: ${c.message}`);
  assert.equal(c.reason, reason, c.message);
  assert.match(c.message, field);
}

test('both fixture sets are valid', () => {
  for (const set of [crs1_0(), crs0_2(), minimalSet()]) {
    const r = run(set);
    for (const k of ['server', 'agent', 'csi', 'oidc'] as const) {
      assert.equal(r.valid[k], true, `${k}: ${r.conditions[k]?.map((c) => c.message).join('; ')}`);
      assert.equal(configValid(set, k).status, 'True');
    }
  }
});

test('reason names: Invalid<Field>, ZTWIM names for jwtIssuer and federation', () => {
  assert.equal(reasonFor('spec.trustDomain'), 'InvalidTrustDomain');
  assert.equal(reasonFor('spec.jwtIssuer'), 'InvalidJWTIssuerURL');
  assert.equal(reasonFor('spec.federation.federatesWith[2].trustDomain'), 'InvalidFederationConfiguration');
  assert.equal(reasonFor('spec.persistence.size'), 'InvalidSize');
});

test('missing ZTWIM: every operand ZeroTrustWorkloadIdentityManagerNotFound', () => {
  const set = { ...minimalSet() };
  delete (set as { ztwim?: unknown }).ztwim;
  for (const k of ['server', 'agent', 'csi', 'oidc'] as const)
    invalid(set, k, 'ZeroTrustWorkloadIdentityManagerNotFound', /create the ZeroTrustWorkloadIdentityManager/);
});

test('bad trust domain on the ZTWIM: every operand InvalidTrustDomain naming the field', () => {
  const set = minimalSet({ ztwim: { trustDomain: 'Bad_Domain' } });
  for (const k of ['server', 'agent', 'csi', 'oidc'] as const)
    invalid(set, k, 'InvalidTrustDomain', /ZeroTrustWorkloadIdentityManager spec\.trustDomain: "Bad_Domain" does not match/);
});

test('missing trust domain and cluster name', () => {
  invalid(minimalSet({ ztwim: { trustDomain: undefined } }), 'agent', 'InvalidTrustDomain', /spec\.trustDomain: is required/);
  invalid(minimalSet({ ztwim: { clusterName: undefined } }), 'server', 'InvalidClusterName', /spec\.clusterName: is required/);
});

test('a name other than cluster', () => {
  const set = { ...minimalSet(), server: cr('SpireServer', { jwtIssuer: 'https://a.org', caSubject: {} }, 'other') };
  invalid(set, 'server', 'InvalidName', /SpireServer metadata\.name: must be "cluster", got "other"/);
});

test('jwtIssuer: not a URL, a query, a fragment, a bad scheme → InvalidJWTIssuerURL', () => {
  for (const bad of ['not a url', 'https://a.org/x?y=1', 'https://a.org/#frag', 'ftp://a.org', 'https://']) {
    invalid(minimalSet({ server: { jwtIssuer: bad } }), 'server', 'InvalidJWTIssuerURL', /SpireServer spec\.jwtIssuer/);
    invalid(minimalSet({ oidc: { jwtIssuer: bad } }), 'oidc', 'InvalidJWTIssuerURL', /SpireOIDCDiscoveryProvider spec\.jwtIssuer/);
  }
});

test('enum, pattern, limits, types, unknown fields: each names its field', () => {
  invalid(
    minimalSet({ server: { logLevel: 'trace' } }),
    'server',
    'InvalidLogLevel',
    /spec\.logLevel: must be one of "debug", "info", "warn", "error", got "trace"/,
  );
  invalid(minimalSet({ server: { caKeyType: 'rsa-1024' } }), 'server', 'InvalidCAKeyType', /spec\.caKeyType/);
  invalid(minimalSet({ server: { persistence: { size: '5G' } } }), 'server', 'InvalidSize', /spec\.persistence\.size: "5G" does not match/);
  invalid(minimalSet({ server: { replicas: 9 } }), 'server', 'InvalidReplicas', /spec\.replicas: must be at most 5, got 9/);
  invalid(minimalSet({ server: { caSubject: { country: 'USA' } } }), 'server', 'InvalidCountry', /spec\.caSubject\.country: must be at most 2 characters/);
  invalid(minimalSet({ oidc: { replicaCount: 0 } }), 'oidc', 'InvalidReplicaCount', /spec\.replicaCount: must be at least 1/);
  invalid(minimalSet({ oidc: { managedRoute: 'yes' } }), 'oidc', 'InvalidManagedRoute', /spec\.managedRoute: must be one of "true", "false"/);
  invalid(minimalSet({ csi: { pluginName: 'Not_DNS' } }), 'csi', 'InvalidPluginName', /spec\.pluginName/);
  invalid(minimalSet({ agent: { socketPath: 'relative/dir' } }), 'agent', 'InvalidSocketPath', /spec\.socketPath/);
  invalid(minimalSet({ agent: { bogus: 1 } }), 'agent', 'InvalidBogus', /spec\.bogus: is not a known field/);
  invalid(minimalSet({ server: { datastore: { maxOpenConns: '10' } } }), 'server', 'InvalidMaxOpenConns', /must be an integer/);
  invalid(minimalSet({ server: { tolerations: new Array(51).fill({}) } }), 'server', 'InvalidTolerations', /at most 50 items/);
  invalid(minimalSet({ server: { jwtIssuer: undefined } }), 'server', 'InvalidJWTIssuerURL', /spec\.jwtIssuer: is required/);
});

test('a $ in a value that lands in server.conf is refused (the server expands environment variables)', () => {
  invalid(
    minimalSet({ server: { caSubject: { organization: 'Cash$Corp' } } }),
    'server',
    'InvalidOrganization',
    /spec\.caSubject\.organization: "Cash\$Corp" contains "\$"/,
  );
  invalid(
    minimalSet({ server: { datastore: { databaseType: 'postgres', connectionString: 'postgres://u:$ecret@db/spire' } } }),
    'server',
    'InvalidConnectionString',
    /spec\.datastore\.connectionString/,
  );
  assert.equal(configValid(minimalSet({ server: { labels: { a: 'b' }, resources: { limits: { cpu: '1' } } } }), 'server').status, 'True');
});

test('labels: bad keys and values', () => {
  invalid(minimalSet({ agent: { labels: { 'bad key': 'x' } } }), 'agent', 'InvalidLabels', /"bad key" is not a valid label key/);
  invalid(minimalSet({ agent: { labels: { ok: 'bad value!' } } }), 'agent', 'InvalidLabels', /"bad value!" is not a valid label value/);
});

test('TTLs: not a duration, zero, SVID longer than CA → TTLConfigurationValid=False; long SVID → warning', () => {
  invalid(minimalSet({ server: { caValidity: 'forever' } }), 'server', 'InvalidCAValidity', /spec\.caValidity/);
  invalid(minimalSet({ server: { defaultX509Validity: '0s' } }), 'server', 'InvalidDefaultX509Validity', /must be greater than 0/);
  const longer = run(minimalSet({ server: { caValidity: '1h', defaultX509Validity: '2h' } }));
  const ttl = longer.conditions.server?.find((c) => c.type === 'TTLConfigurationValid');
  assert.equal(ttl?.status, 'False');
  assert.equal(ttl?.reason, 'InvalidTTLConfiguration');
  assert.match(ttl?.message ?? '', /defaultX509Validity: 2h is longer than caValidity 1h/);
  assert.equal(longer.valid.server, false);
  const warn = run(minimalSet({ server: { caValidity: '24h', defaultX509Validity: '6h' } }));
  const w = warn.conditions.server?.find((c) => c.type === 'TTLConfigurationValid');
  assert.equal(w?.status, 'True');
  assert.equal(w?.reason, 'TTLConfigurationWarning');
  assert.equal(warn.valid.server, true);
  assert.match(warn.warnings[0] ?? '', /min\(caValidity\/6, 7d\) = 240m/);
});

test('datastore: ztwim supports sqlite3 and postgres; postgres needs a connection string; replicas need SQL', () => {
  invalid(
    minimalSet({ server: { datastore: { databaseType: 'mysql', connectionString: 'u:p@tcp(db)/spire' } } }),
    'server',
    'InvalidDatastore',
    /not supported by ztwim server/,
  );
  assert.equal(
    configValid(minimalSet({ server: { datastore: { databaseType: 'mysql', connectionString: 'u:p@tcp(db)/spire' } } }), 'server', { variant: 'spire' }).status,
    'True',
  );
  invalid(
    minimalSet({ server: { datastore: { databaseType: 'postgres' } } }),
    'server',
    'InvalidDatastore',
    /needs a connection string or connectionStringSecretRef/,
  );
  assert.equal(
    configValid(minimalSet({ server: { datastore: { databaseType: 'postgres', connectionStringSecretRef: { name: 'db' } } } }), 'server').status,
    'True',
  );
  invalid(minimalSet({ server: { replicas: 2 } }), 'server', 'InvalidReplicas', /2 replicas need a shared SQL datastore/);
  assert.equal(
    configValid(minimalSet({ server: { replicas: 3, datastore: { databaseType: 'postgres', connectionStringSecretRef: { name: 'db' } } } }), 'server').status,
    'True',
  );
  invalid(
    minimalSet({ server: { keyManager: { diskEnabled: 'false', memoryEnabled: 'false' } } }),
    'server',
    'InvalidKeyManager',
    /at least one of diskEnabled and memoryEnabled/,
  );
});

test('federation: own trust domain, duplicates, https_spiffe without an ID, https_web without exactly one of acme/servingCert', () => {
  const fed = (federation: unknown) => minimalSet({ server: { federation } });
  invalid(
    fed({ federatesWith: [{ trustDomain: 'example.org', bundleEndpointUrl: 'https://x', bundleEndpointProfile: 'https_web' }] }),
    'server',
    'InvalidFederationConfiguration',
    /"example.org" is this cluster's own trust domain/,
  );
  invalid(
    fed({
      federatesWith: [
        { trustDomain: 'a.org', bundleEndpointUrl: 'https://x', bundleEndpointProfile: 'https_web' },
        { trustDomain: 'a.org', bundleEndpointUrl: 'https://y', bundleEndpointProfile: 'https_web' },
      ],
    }),
    'server',
    'InvalidFederationConfiguration',
    /federatesWith\[1\]/,
  );
  invalid(
    fed({ federatesWith: [{ trustDomain: 'a.org', bundleEndpointUrl: 'https://x', bundleEndpointProfile: 'https_spiffe' }] }),
    'server',
    'InvalidFederationConfiguration',
    /endpointSpiffeId: is required for https_spiffe/,
  );
  invalid(
    fed({
      federatesWith: [{ trustDomain: 'a.org', bundleEndpointUrl: 'https://x', bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: 'spiffe://a.org/Bad%' }],
    }),
    'server',
    'InvalidFederationConfiguration',
    /endpointSpiffeId/,
  );
  invalid(
    fed({ federatesWith: [{ trustDomain: 'a.org', bundleEndpointUrl: 'http://x', bundleEndpointProfile: 'https_web' }] }),
    'server',
    'InvalidFederationConfiguration',
    /bundleEndpointUrl/,
  );
  invalid(fed({ bundleEndpoint: { profile: 'https_web' } }), 'server', 'InvalidFederationConfiguration', /httpsWeb: is required when profile is https_web/);
  invalid(
    fed({
      bundleEndpoint: { profile: 'https_web', httpsWeb: { acme: { directoryUrl: 'https://acme', domainName: 'a.org', email: 'a@a.org' }, servingCert: {} } },
    }),
    'server',
    'InvalidFederationConfiguration',
    /exactly one of acme and servingCert/,
  );
  assert.equal(
    configValid(
      fed({
        bundleEndpoint: { profile: 'https_web', httpsWeb: { servingCert: {} } },
        federatesWith: [
          {
            trustDomain: 'a.org',
            bundleEndpointUrl: 'https://a.org/b',
            bundleEndpointProfile: 'https_spiffe',
            endpointSpiffeId: 'spiffe://a.org/spire/server',
          },
        ],
      }),
      'server',
    ).status,
    'True',
  );
});

test('agent: hostCert needs both paths; agent socketPath must equal the CSI agentSocketPath', () => {
  invalid(
    minimalSet({
      agent: { workloadAttestors: { k8sEnabled: 'true', workloadAttestorsVerification: { type: 'hostCert', hostCertBasePath: '/var/lib/kubelet/pki' } } },
    }),
    'agent',
    'InvalidWorkloadAttestorsVerification',
    /hostCert requires hostCertBasePath and hostCertFileName/,
  );
  const set = minimalSet({ agent: { socketPath: '/run/a' }, csi: { agentSocketPath: '/run/b' } });
  invalid(set, 'agent', 'InvalidSocketPath', /"\/run\/a" differs from SpiffeCSIDriver spec\.agentSocketPath "\/run\/b"/);
  invalid(set, 'csi', 'InvalidAgentSocketPath', /differs from SpireAgent spec\.socketPath/);
});

test('OIDC csiDriverName must equal the CSI pluginName', () => {
  invalid(
    minimalSet({ oidc: { csiDriverName: 'other.spiffe.io' } }),
    'oidc',
    'InvalidCSIDriverName',
    /"other.spiffe.io" differs from SpiffeCSIDriver spec\.pluginName "csi.spiffe.io"/,
  );
});

test('0.2 operand copies that disagree with the ZTWIM are reported on that operand only', () => {
  const set = minimalSet({ agent: { trustDomain: 'other.org' } });
  invalid(
    set,
    'agent',
    'InvalidTrustDomain',
    /SpireAgent spec\.trustDomain: "other.org" differs from ZeroTrustWorkloadIdentityManager spec\.trustDomain "example.org"/,
  );
  assert.equal(configValid(set, 'server').status, 'True');
});

test('garbage never throws: null spec, wrong types everywhere', () => {
  const garbage: CrSet = {
    ztwim: { apiVersion: 'operator.openshift.io/v1alpha1', kind: 'ZeroTrustWorkloadIdentityManager', metadata: { name: 'cluster' }, spec: 42 as never },
    server: {
      apiVersion: 'operator.openshift.io/v1alpha1',
      kind: 'SpireServer',
      metadata: { name: 'cluster' },
      spec: { caSubject: 'x', persistence: [], datastore: null, federation: { federatesWith: 'x' } } as never,
    },
    agent: { apiVersion: 'operator.openshift.io/v1alpha1', kind: 'SpireAgent', metadata: { name: 'cluster' }, spec: null as never },
  };
  const r = run(garbage);
  assert.equal(r.valid.server, false);
  assert.equal(r.valid.agent, false);
});
