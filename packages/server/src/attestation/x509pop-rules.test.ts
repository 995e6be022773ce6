// The x509pop attestor's rules one by one (SPIRE's x509pop server plugin): CA bundle loading,
// validity edges, path building limits, signature checks on issuer matches, the spiffe mode with
// its /spire-exchange/ prefix, agent_path_template rendering and the exact selectors. Each test
// pins one rule that the end-to-end cases in x509pop.test.ts do not reach (found by mutation
// testing: docs/mutation-testing.md).
import 'reflect-metadata';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto, KeyObject, createHash, randomBytes } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { answerX509PopChallenge, isZtwimError, marshalX509PopPayload, parseX509PopChallenge } from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import { FakeClock } from '@ztwim/testkit';
import { X509PopAttestor, type X509PopAttestorConfig } from './x509pop.ts';

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const td = TrustDomain.parse('example.org');
const dir = mkdtempSync(join(tmpdir(), 'x509pop-rules-'));
/** Certificate validity in these tests: [T0, T1], whole seconds as X.509 stores them. */
const T0 = new Date(Math.floor(Date.now() / 1000) * 1000 - 3600_000);
const T1 = new Date(T0.getTime() + 7200_000);

interface Ca {
  readonly keys: webcrypto.CryptoKeyPair;
  readonly cert: x509.X509Certificate;
}

async function makeCa(name: string, opts: { notBefore?: Date; notAfter?: Date } = {}): Promise<Ca> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${name}`,
    notBefore: opts.notBefore ?? T0,
    notAfter: opts.notAfter ?? T1,
    keys,
    signingAlgorithm: EC,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { keys, cert };
}

/** A CA certificate named `name`, issued under `issuerName` and signed with `signer`'s key. */
async function makeIntermediate(signer: Ca, name: string, issuerName = signer.cert.subject): Promise<Ca> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: `CN=${name}`,
    issuer: issuerName,
    notBefore: T0,
    notAfter: T1,
    publicKey: keys.publicKey,
    signingKey: signer.keys.privateKey,
    signingAlgorithm: EC,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { keys, cert };
}

interface LeafOpts {
  subject?: string;
  serial?: string;
  /** false: no key usage extension at all. */
  ku?: number | false;
  uris?: string[];
  notBefore?: Date;
  notAfter?: Date;
  issuerName?: string;
}

async function makeLeaf(signer: Ca, opts: LeafOpts = {}) {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const exts: x509.Extension[] = [];
  if (opts.ku !== false) exts.push(new x509.KeyUsagesExtension(opts.ku ?? x509.KeyUsageFlags.digitalSignature, true));
  if (opts.uris !== undefined) exts.push(new x509.SubjectAlternativeNameExtension(opts.uris.map((value) => ({ type: 'url' as const, value }))));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: opts.serial ?? '0abc',
    subject: opts.subject ?? 'CN=node-1',
    issuer: opts.issuerName ?? signer.cert.subject,
    notBefore: opts.notBefore ?? T0,
    notAfter: opts.notAfter ?? T1,
    publicKey: keys.publicKey,
    signingKey: signer.keys.privateKey,
    signingAlgorithm: EC,
    extensions: exts,
  });
  return { cert, key: KeyObject.from(keys.privateKey) };
}

const der = (c: { cert: x509.X509Certificate }): Uint8Array => new Uint8Array(c.cert.rawData);
const fp = (c: { cert: x509.X509Certificate }): string => createHash('sha1').update(der(c)).digest('hex');

function bundleFile(...cas: Ca[]): string {
  const path = join(dir, `ca-${randomBytes(4).toString('hex')}.pem`);
  writeFileSync(path, cas.map((c) => c.cert.toString('pem')).join('\n'));
  return path;
}

function attestor(cfg: Partial<X509PopAttestorConfig> & { roots?: Ca[] }, clock = new FakeClock(T0.getTime() + 60_000)): X509PopAttestor {
  const { roots = [], ...rest } = cfg;
  return new X509PopAttestor({
    trustDomain: td,
    mode: 'external_pki',
    caBundlePaths: roots.length > 0 ? [bundleFile(...roots)] : [],
    clock,
    random: (n) => randomBytes(n),
    ...rest,
  });
}

function attest(a: X509PopAttestor, leaf: { key: KeyObject }, chain: Uint8Array[]) {
  return a.attest(marshalX509PopPayload({ certificates: chain }), async (c) => answerX509PopChallenge(parseX509PopChallenge(c), leaf.key, randomBytes(32)));
}

async function refused(p: Promise<unknown>, re: RegExp, what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => isZtwimError(e) && e.code === 'ERR_PERMISSION_DENIED' && re.test(e.message), what);
}

describe('x509pop CA bundle (ca_bundle_path)', () => {
  it('every certificate of a bundle file is trusted', async () => {
    const first = await makeCa('first-ca');
    const second = await makeCa('second-ca');
    const a = attestor({ roots: [first, second] });
    const leaf = await makeLeaf(second);
    const r = await attest(a, leaf, [der(leaf)]);
    assert.ok(r.selectors.some((s) => s.value === `ca:fingerprint:${fp(second)}`));
  });

  it('an unreadable bundle path or a file without PEM certificates is a config error naming the file', () => {
    const missing = join(dir, 'missing.pem');
    assert.throws(
      () => attestor({ caBundlePaths: [missing] }),
      (e: unknown) => isZtwimError(e) && e.code === 'ERR_CONFIG' && e.message === `x509pop: cannot read ca_bundle_path ${missing}: ENOENT`,
    );
    const empty = join(dir, 'empty.pem');
    writeFileSync(empty, 'no certificates here\n');
    assert.throws(
      () => attestor({ caBundlePaths: [empty] }),
      (e: unknown) => isZtwimError(e) && e.code === 'ERR_CONFIG' && e.message === `x509pop: ${empty} contains no PEM certificates`,
    );
  });

  it('spiffe mode reads no bundle file', () => {
    assert.doesNotThrow(() => attestor({ mode: 'spiffe', caBundlePaths: [join(dir, 'missing.pem')], spiffeAuthorities: () => [] }));
  });
});

describe('x509pop chain verification', () => {
  it('certificates are valid from notBefore through notAfter inclusive, leaf and CA alike', async () => {
    const ca = await makeCa('edge-ca');
    const leaf = await makeLeaf(ca);
    // Leaf and CA share [T0, T1]: both edges are checked on both certificates.
    const at = (ms: number) => attestor({ roots: [ca] }, new FakeClock(ms));
    await attest(at(T0.getTime()), leaf, [der(leaf)]);
    await attest(at(T1.getTime()), leaf, [der(leaf)]);
    await refused(attest(at(T1.getTime() + 1000), leaf, [der(leaf)]), /expired or not yet valid/, 'after notAfter');
    await refused(attest(at(T0.getTime() - 1000), leaf, [der(leaf)]), /expired or not yet valid/, 'before notBefore');
  });

  it('an expired root CA is refused even when the leaf is valid', async () => {
    const clock = new FakeClock(T1.getTime() - 1000);
    const ca = await makeCa('old-ca', { notAfter: new Date(T1.getTime() - 2000) });
    const leaf = await makeLeaf(ca);
    await refused(attest(attestor({ roots: [ca] }, clock), leaf, [der(leaf)]), /the CA certificate is expired/, 'expired root');
  });

  it('a leaf that names the trusted CA as issuer but is signed by another key is refused', async () => {
    const ca = await makeCa('agents-ca');
    const sameName = await makeCa('agents-ca');
    const forged = await makeLeaf(sameName);
    await refused(attest(attestor({ roots: [ca] }), forged, [der(forged)]), /unknown authority/, 'forged issuer');
    // The same for an intermediate: named after the trusted intermediate, signed by another key.
    const inter = await makeIntermediate(ca, 'agents-intermediate');
    const otherInter = await makeIntermediate(sameName, 'agents-intermediate');
    const underOther = await makeLeaf(otherInter);
    await refused(attest(attestor({ roots: [ca] }), underOther, [der(underOther), der(inter)]), /unknown authority/, 'forged intermediate');
  });

  it('paths of up to nine intermediates are built; ten are refused as too long', async () => {
    const ca = await makeCa('deep-ca');
    const inters: Ca[] = [];
    let signer = ca;
    for (let i = 0; i < 10; i++) {
      signer = await makeIntermediate(signer, `inter-${i}`);
      inters.push(signer);
    }
    const a = attestor({ roots: [ca] });
    const nine = await makeLeaf(inters[8] as Ca);
    const r = await attest(a, nine, [der(nine), ...inters.slice(0, 9).reverse().map(der)]);
    assert.equal(r.selectors.filter((s) => s.value.startsWith('ca:fingerprint:')).length, 10);
    const ten = await makeLeaf(inters[9] as Ca);
    await refused(attest(a, ten, [der(ten), ...inters.reverse().map(der)]), /chain too long/, 'ten intermediates');
  });

  it('a self-signed CA or a loop sent as intermediates is no path to a trusted root', async () => {
    const ca = await makeCa('agents-ca');
    const selfSigned = await makeCa('self-signed');
    const leaf = await makeLeaf(selfSigned);
    await refused(attest(attestor({ roots: [ca] }), leaf, [der(leaf), der(selfSigned)]), /unknown authority/, 'self-signed intermediate');

    // A leaf that is itself a CA, issued by an intermediate that it issued in turn.
    const kLeaf = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const kInter = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const caExts = () => [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
    ];
    const loopLeaf = await x509.X509CertificateGenerator.create({
      serialNumber: '0a',
      subject: 'CN=loop-leaf',
      issuer: 'CN=loop-inter',
      notBefore: T0,
      notAfter: T1,
      publicKey: kLeaf.publicKey,
      signingKey: kInter.privateKey,
      signingAlgorithm: EC,
      extensions: caExts(),
    });
    const loopInter = await x509.X509CertificateGenerator.create({
      serialNumber: '0b',
      subject: 'CN=loop-inter',
      issuer: 'CN=loop-leaf',
      notBefore: T0,
      notAfter: T1,
      publicKey: kInter.publicKey,
      signingKey: kLeaf.privateKey,
      signingAlgorithm: EC,
      extensions: caExts(),
    });
    await refused(
      attest(attestor({ roots: [ca] }), { key: KeyObject.from(kLeaf.privateKey) }, [new Uint8Array(loopLeaf.rawData), new Uint8Array(loopInter.rawData)]),
      /unknown authority/,
      'loop',
    );
  });

  it('a leaf without a key usage extension is accepted (no usage restriction, as in Go)', async () => {
    const ca = await makeCa('agents-ca');
    const leaf = await makeLeaf(ca, { ku: false });
    const r = await attest(attestor({ roots: [ca] }), leaf, [der(leaf)]);
    assert.equal(r.agentId.toString(), `spiffe://example.org/spire/agent/x509pop/${fp(leaf)}`);
  });
});

describe('x509pop spiffe mode', () => {
  it('trusts the trust domain authorities only and names the agent after the SVID path below /spire-exchange/', async () => {
    const tdCa = await makeCa('td-ca');
    const externalCa = await makeCa('external-ca');
    const a = attestor({ mode: 'spiffe', caBundlePaths: [bundleFile(externalCa)], spiffeAuthorities: () => [der(tdCa)] });
    const svid = await makeLeaf(tdCa, { uris: ['spiffe://example.org/spire-exchange/dc-1/node-1'] });
    const r = await attest(a, svid, [der(svid)]);
    assert.equal(r.agentId.toString(), 'spiffe://example.org/spire/agent/x509pop/dc-1/node-1');
    const external = await makeLeaf(externalCa, { uris: ['spiffe://example.org/spire-exchange/node-2'] });
    await refused(attest(a, external, [der(external)]), /unknown authority/, 'external_pki CA in spiffe mode');
  });

  it('without authorities nothing is trusted', async () => {
    const tdCa = await makeCa('td-ca');
    const svid = await makeLeaf(tdCa, { uris: ['spiffe://example.org/spire-exchange/node-1'] });
    await refused(attest(attestor({ mode: 'spiffe' }), svid, [der(svid)]), /unknown authority/, 'no authorities');
  });

  it('the leaf must carry a SPIFFE ID under the exchange prefix', async () => {
    const tdCa = await makeCa('td-ca');
    const a = attestor({ mode: 'spiffe', spiffeAuthorities: () => [der(tdCa)] });
    for (const [what, uris] of [
      ['no URI SAN', undefined],
      ['a workload SVID', ['spiffe://example.org/workload']],
      ['the prefix as a suffix', ['spiffe://example.org/node/spire-exchange/']],
      ['not a SPIFFE ID', ['spiffe://Example.org/spire-exchange/x']],
    ] as const) {
      const leaf = await makeLeaf(tdCa, uris === undefined ? {} : { uris: [...uris] });
      await assert.rejects(
        attest(a, leaf, [der(leaf)]),
        (e: unknown) => isZtwimError(e) && e.code === 'ERR_PERMISSION_DENIED' && e.message === 'x509pop: leaf SPIFFE ID must start with /spire-exchange/',
        what,
      );
    }
  });

  it('spiffe_prefix and agent_path_template apply to the SVID path', async () => {
    const tdCa = await makeCa('td-ca');
    const svid = await makeLeaf(tdCa, { uris: ['spiffe://example.org/nodes/eu/n1'] });
    const a = attestor({ mode: 'spiffe', spiffeAuthorities: () => [der(tdCa)], spiffePrefix: '/nodes/' });
    assert.equal((await attest(a, svid, [der(svid)])).agentId.toString(), 'spiffe://example.org/spire/agent/x509pop/eu/n1');
    const t = attestor({
      mode: 'spiffe',
      spiffeAuthorities: () => [der(tdCa)],
      spiffePrefix: '/nodes/',
      agentPathTemplate: '/{{.PluginName}}/{{ .Fingerprint }}/{{  .SVIDPathTrimmed  }}',
    });
    assert.equal((await attest(t, svid, [der(svid)])).agentId.toString(), `spiffe://example.org/spire/agent/x509pop/${fp(svid)}/eu/n1`);
  });
});

describe('x509pop agent_path_template (external_pki)', () => {
  it('renders {{ .Field }} with any spacing, including the common name', async () => {
    const ca = await makeCa('agents-ca');
    const leaf = await makeLeaf(ca, { subject: 'CN=node-7' });
    const a = attestor({ roots: [ca], agentPathTemplate: '/{{.PluginName}}/cn-{{  .CommonName  }}/{{ .Fingerprint }}' });
    assert.equal((await attest(a, leaf, [der(leaf)])).agentId.toString(), `spiffe://example.org/spire/agent/x509pop/cn-node-7/${fp(leaf)}`);
  });

  it('the common name is the CN attribute of a multi-attribute subject, or empty when there is none', async () => {
    const ca = await makeCa('agents-ca');
    const a = attestor({ roots: [ca], agentPathTemplate: '/cn-{{ .CommonName }}/x' });
    const multi = await makeLeaf(ca, { subject: 'O=acme, CN=node-8' });
    assert.equal((await attest(a, multi, [der(multi)])).agentId.path, '/spire/agent/cn-node-8/x');
    const noCn = await makeLeaf(ca, { subject: 'O=acme' });
    assert.equal((await attest(a, noCn, [der(noCn)])).agentId.path, '/spire/agent/cn-/x');
  });

  it('an unknown field is refused by name', async () => {
    const ca = await makeCa('agents-ca');
    const leaf = await makeLeaf(ca);
    await assert.rejects(
      attest(attestor({ roots: [ca], agentPathTemplate: '/{{ .Hostname }}' }), leaf, [der(leaf)]),
      (e: unknown) => isZtwimError(e) && e.code === 'ERR_PERMISSION_DENIED' && e.message === 'x509pop: agent_path_template uses unknown field .Hostname',
    );
  });
});

describe('x509pop selectors', () => {
  it('are all of type x509pop: subject:cn, ca:fingerprint per CA above the leaf, serialnumber, san of this trust domain', async () => {
    const ca = await makeCa('agents-ca');
    const inter = await makeIntermediate(ca, 'agents-intermediate');
    const leaf = await makeLeaf(inter, {
      uris: ['x509pop://example.org/datacenter/eu-1', 'x509pop://other.org/datacenter/us-1', 'x509pop://example.org/rack/r7'],
    });
    const r = await attest(attestor({ roots: [ca] }), leaf, [der(leaf), der(inter)]);
    assert.deepEqual(r.selectors, [
      { type: 'x509pop', value: 'subject:cn:node-1' },
      { type: 'x509pop', value: `ca:fingerprint:${fp(inter)}` },
      { type: 'x509pop', value: `ca:fingerprint:${fp(ca)}` },
      { type: 'x509pop', value: 'serialnumber:0abc' },
      { type: 'x509pop', value: 'san:datacenter:eu-1' },
      { type: 'x509pop', value: 'san:rack:r7' },
    ]);
  });

  it('no subject:cn selector for a leaf without a common name', async () => {
    const ca = await makeCa('agents-ca');
    const leaf = await makeLeaf(ca, { subject: 'O=acme' });
    const r = await attest(attestor({ roots: [ca] }), leaf, [der(leaf)]);
    assert.deepEqual(
      r.selectors.map((s) => s.value),
      [`ca:fingerprint:${fp(ca)}`, 'serialnumber:0abc'],
    );
  });

  it('serialnumber is lower-case hex without leading zero bytes, padded to whole bytes', async () => {
    const ca = await makeCa('agents-ca');
    const a = attestor({ roots: [ca] });
    for (const [serial, want] of [
      ['10bc', '10bc'],
      ['0abc', '0abc'],
      ['0f', '0f'],
      ['00ff01', 'ff01'],
      ['7f00ab', '7f00ab'],
    ] as const) {
      const leaf = await makeLeaf(ca, { serial });
      const r = await attest(a, leaf, [der(leaf)]);
      assert.deepEqual(
        r.selectors.filter((s) => s.value.startsWith('serialnumber:')),
        [{ type: 'x509pop', value: `serialnumber:${want}` }],
        serial,
      );
    }
  });
});
