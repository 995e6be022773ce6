// `ztwim up` federation in one flag each: two `up`s in two trust domains, each serving its bundle
// endpoint and federating with the other's; the invoking user's workload in each gets the other
// domain's bundle (ztwim api fetch x509 -write writes it as federated_bundle.0.0.pem).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pemToDerList } from '@ztwim/spiffe';
import { freePort } from './lib/net.ts';
import { makeTmpDir, type TmpDir } from './lib/tmp.ts';
import { startUp, stopUp, type Up } from './lib/ztwim-up.ts';
import { runZtwim } from './lib/ztwim-cli.ts';
import { until } from './lib/wait.ts';

describe('ztwim up -federateWith', () => {
  const dirs: TmpDir[] = [];
  const ups: Up[] = [];
  after(async () => {
    for (const u of ups) await stopUp(u);
    for (const d of dirs) d.cleanup();
  });

  it('two ups federate with each other and their workloads get the other bundle', async () => {
    const [a, b] = [makeTmpDir('ztwim-up-fed-a-'), makeTmpDir('ztwim-up-fed-b-')];
    dirs.push(a, b);
    const [pa, pb] = [await freePort(), await freePort()];
    ups.push(
      await startUp(a, { server: await freePort(), oidc: 0 }, [
        '-trustDomain',
        'a.test',
        '-bundleEndpointPort',
        String(pa),
        '-federateWith',
        `https://127.0.0.1:${pb}`,
      ]),
    );
    ups.push(
      await startUp(b, { server: await freePort(), oidc: 0 }, [
        '-trustDomain',
        'b.test',
        '-bundleEndpointPort',
        String(pb),
        '-federateWith',
        `https://127.0.0.1:${pa}`,
      ]),
    );
    for (const [up, other] of [
      [ups[0], 'b.test'],
      [ups[1], 'a.test'],
    ] as const) {
      await until(`federation line for ${other}`, () => (up?.out().includes(`Federating with ${other} through`) === true ? true : undefined));
    }
    for (const [dir, other] of [
      [a, 'b.test'],
      [b, 'a.test'],
    ] as const) {
      const out = join(dir.path, 'fetched');
      await until(
        `${other} bundle at the workload`,
        async () => {
          const r = await runZtwim(dir.path, ['api', 'fetch', 'x509', '-socketPath', join(dir.path, 'agent.sock'), '-write', out]);
          return r.status === 0 && r.stdout.includes(`for trust domain spiffe://${other} `) ? r : undefined;
        },
        60_000,
      );
      const ders = pemToDerList(readFileSync(join(out, 'federated_bundle.0.0.pem'), 'utf8'));
      assert.ok(ders.length >= 1);
    }
    // Each side's federated bundle is the other side's own bundle.
    const show = async (dir: TmpDir): Promise<string> =>
      (await runZtwim(dir.path, ['server', 'bundle', 'show', '-socketPath', join(dir.path, 'server.sock')])).stdout;
    const federatedInA = readFileSync(join(a.path, 'fetched', 'federated_bundle.0.0.pem'), 'utf8');
    assert.deepEqual(
      pemToDerList(federatedInA)
        .map((d) => Buffer.from(d).toString('hex'))
        .sort(),
      pemToDerList(await show(b))
        .map((d) => Buffer.from(d).toString('hex'))
        .sort(),
    );
  });
});
