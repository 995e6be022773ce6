// Rules of the kubelet client (SPIRE v1.13 pkg/agent/plugin/workloadattestor/k8s) that
// k8s-kubelet-client.test.ts does not state: which port and scheme each port setting gives, the
// default reload_interval, the old connection closed when the credentials are read again, the
// read-only port never reloading, the 10 s request deadline, the 1 KiB of body kept in a refusal,
// the token's trimming, CA bundles with several certificates or a broken one, and the causes of
// the configuration errors. The kubelet is a plain HTTP or HTTPS server on 127.0.0.1; the files
// are served by a stand-in `readFile` where no real file is needed.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';
import { captureLogs, eventually, FakeClock, holdsFor, issueServerCert, makeCa, makeTmpDir, type TestCa, type TestCert, type TmpDir } from '@ztwim/testkit';

import { KubeletClient } from './k8s-kubelet-client.ts';

interface Kubelet {
  readonly port: number;
  /** Per request: the Authorization header and the remote port of its connection. */
  readonly seen: Array<{ authorization: string | undefined; remotePort: number | undefined }>;
  readonly sockets: Socket[];
  close(): Promise<void>;
}

type Answer = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const POD_LIST = '{"kind":"PodList","items":[]}';
const podList: Answer = (_req, res) => void res.writeHead(200).end(POD_LIST);

async function startKubelet(answer: Answer, tls?: TestCert): Promise<Kubelet> {
  const seen: Kubelet['seen'] = [];
  const sockets: Socket[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    seen.push({ authorization: req.headers.authorization, remotePort: req.socket.remotePort });
    answer(req, res);
  };
  const server = tls === undefined ? http.createServer(handler) : https.createServer({ cert: tls.certPem, key: tls.keyPem }, handler);
  // Idle keep-alive connections stay open until the client closes them.
  server.keepAliveTimeout = 120_000;
  server.on(tls === undefined ? 'connection' : 'secureConnection', (s: Socket) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let dir: TmpDir;
let ca: TestCa;
let otherCa: TestCa;
let otherDir: TmpDir;
let serving: TestCert;

before(() => {
  dir = makeTmpDir('ztwim-kubelet-rules-');
  ca = makeCa(dir.path, 'kubelet ca');
  otherDir = makeTmpDir('ztwim-kubelet-rules-other-');
  otherCa = makeCa(otherDir.path, 'other ca');
  serving = issueServerCert(ca, 'kubelet', ['node-1'], ['127.0.0.1']);
});

after(() => {
  dir.cleanup();
  otherDir.cleanup();
});

/** A readFile stand-in serving `files` by path and counting the reads. */
function memoryFiles(files: Map<string, string>): { readFile: (path: string) => Buffer; reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    readFile: (path) => {
      reads.push(path);
      const text = files.get(path);
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
      return Buffer.from(text);
    },
  };
}

describe('kubelet client rules: ports', () => {
  const token = (): ReturnType<typeof memoryFiles> => memoryFiles(new Map([['/t', 'tok']]));
  it('neither port set: the secure port 10250 on 127.0.0.1', () => {
    const c = new KubeletClient({ tokenPath: '/t', skipKubeletVerification: true }, token());
    assert.equal(c.url, 'https://127.0.0.1:10250/pods');
    c.close();
  });
  it('a read-only port of 0 or less leaves the secure port in use', () => {
    for (const readOnlyPort of [0, -1]) {
      const c = new KubeletClient({ readOnlyPort, securePort: 4443, tokenPath: '/t', skipKubeletVerification: true }, token());
      assert.equal(c.url, 'https://127.0.0.1:4443/pods');
      c.close();
    }
  });
  it('a secure port of 0 or less beside a read-only port: plain HTTP on the read-only port', () => {
    for (const securePort of [0, -1]) {
      const c = new KubeletClient({ readOnlyPort: 10255, securePort }, token());
      assert.equal(c.url, 'http://127.0.0.1:10255/pods');
      c.close();
    }
  });
  it('an IPv6 node name is bracketed in the URL', () => {
    const c = new KubeletClient({ nodeName: '::1', securePort: 10250, tokenPath: '/t', skipKubeletVerification: true }, token());
    assert.equal(c.url, 'https://[::1]:10250/pods');
    c.close();
  });
});

describe('kubelet client rules: reload', () => {
  for (const reloadIntervalMs of [undefined, 0, -5]) {
    it(`reload_interval ${String(reloadIntervalMs)}: the default of 60 s`, async () => {
      const k = await startKubelet(podList, serving);
      const clock = new FakeClock();
      const files = new Map([['/token', 'first']]);
      const mem = memoryFiles(files);
      const c = new KubeletClient(
        { securePort: k.port, tokenPath: '/token', skipKubeletVerification: true, ...(reloadIntervalMs === undefined ? {} : { reloadIntervalMs }) },
        { clock, readFile: mem.readFile },
      );
      try {
        await c.getPodList();
        files.set('/token', 'second');
        clock.advance(59_999);
        await c.getPodList();
        clock.advance(1);
        await c.getPodList();
        assert.deepEqual(
          k.seen.map((s) => s.authorization),
          ['Bearer first', 'Bearer first', 'Bearer second'],
        );
        assert.equal(mem.reads.length, 2);
      } finally {
        c.close();
        await k.close();
      }
    });
  }

  it('reloading closes the connection of the credentials it replaces', async () => {
    const k = await startKubelet(podList, serving);
    const clock = new FakeClock();
    const c = new KubeletClient(
      { securePort: k.port, tokenPath: '/token', skipKubeletVerification: true, reloadIntervalMs: 1000 },
      { clock, readFile: memoryFiles(new Map([['/token', 'tok']])).readFile },
    );
    try {
      await c.getPodList();
      assert.equal(k.sockets.length, 1);
      const first = k.sockets[0] as Socket;
      await c.getPodList();
      assert.equal(k.seen[1]?.remotePort, k.seen[0]?.remotePort, 'kept alive while the credentials hold');
      clock.advance(1000);
      await c.getPodList();
      assert.notEqual(k.seen[2]?.remotePort, k.seen[0]?.remotePort, 'a new connection for the new credentials');
      await eventually('the old connection closed', () => first.destroyed || first.readyState === 'closed');
    } finally {
      c.close();
      await k.close();
    }
  });

  it('a reload that fails is logged and the loaded credentials stay in use', async () => {
    const k = await startKubelet(podList, serving);
    const clock = new FakeClock();
    const files = new Map([['/token', 'first']]);
    const { log, lines } = captureLogs('debug');
    const c = new KubeletClient(
      { securePort: k.port, tokenPath: '/token', skipKubeletVerification: true, reloadIntervalMs: 1000 },
      { clock, logger: log, readFile: memoryFiles(files).readFile },
    );
    try {
      await c.getPodList();
      files.delete('/token');
      clock.advance(1000);
      await c.getPodList();
      assert.equal(k.seen[1]?.authorization, 'Bearer first');
      assert.equal(k.seen[1]?.remotePort, k.seen[0]?.remotePort, 'the old connection is kept');
      const warned = lines.filter((l) => l.level === 'warn');
      assert.equal(warned.length, 1);
      assert.equal(warned[0]?.msg, 'k8s: Unable to load kubelet client');
      assert.match(JSON.stringify(warned[0]?.err), /unable to load token/);
    } finally {
      c.close();
      await k.close();
    }
  });

  it('the read-only port keeps its one connection: nothing to reload', async () => {
    const k = await startKubelet(podList);
    const clock = new FakeClock();
    const c = new KubeletClient({ readOnlyPort: k.port, reloadIntervalMs: 1000 }, { clock });
    try {
      await c.getPodList();
      clock.advance(5000);
      await c.getPodList();
      assert.equal(k.sockets.length, 1);
      assert.equal(k.seen[1]?.remotePort, k.seen[0]?.remotePort);
    } finally {
      c.close();
      await k.close();
    }
  });
});

describe('kubelet client rules: requests', () => {
  it('a kubelet that does not answer within 10 s: the request fails with the URL', async () => {
    const k = await startKubelet(() => undefined);
    const clock = new FakeClock();
    const c = new KubeletClient({ readOnlyPort: k.port }, { clock });
    try {
      let settled = false;
      const p = c.getPodList().finally(() => {
        settled = true;
      });
      p.catch(() => undefined);
      await eventually('the request reached the kubelet', () => k.seen.length === 1);
      clock.advance(9_999);
      // The timer fires within a turn of the clock step: a wrong deadline would show at once.
      await holdsFor('no answer yet', () => !settled, { forMs: 100 });
      clock.advance(1);
      await assert.rejects(p, (e: unknown) => {
        assert.ok(isZtwimError(e, 'ERR_INTERNAL'));
        assert.equal(e.message, 'k8s: unable to perform request: no answer in 10000 ms');
        assert.deepEqual(e.fields, { url: `http://127.0.0.1:${k.port}/pods` });
        assert.equal((e.cause as { code?: string }).code, 'ETIMEDOUT');
        return true;
      });
    } finally {
      c.close();
      await k.close();
    }
  });

  it('a refusal keeps the first 1024 bytes of the body, and the URL and status as fields', async () => {
    const body = `${'a'.repeat(1024)}${'b'.repeat(500)}`;
    const k = await startKubelet((_req, res) => void res.writeHead(503).end(body));
    const c = new KubeletClient({ readOnlyPort: k.port });
    try {
      await assert.rejects(c.getPodList(), (e: unknown) => {
        assert.ok(isZtwimError(e, 'ERR_INTERNAL'));
        assert.equal(e.message, `k8s: unexpected status code on pods response: 503 ${'a'.repeat(1024)}`);
        assert.deepEqual(e.fields, { url: `http://127.0.0.1:${k.port}/pods`, status: 503 });
        return true;
      });
    } finally {
      c.close();
      await k.close();
    }
  });

  it('the token is trimmed, and an empty one sends no Authorization header', async () => {
    const k = await startKubelet(podList, serving);
    try {
      for (const [text, want] of [
        ['  tok-1 \n', 'Bearer tok-1'],
        [' \n', undefined],
      ] as const) {
        const c = new KubeletClient(
          { securePort: k.port, tokenPath: '/token', skipKubeletVerification: true },
          { readFile: memoryFiles(new Map([['/token', text]])).readFile },
        );
        await c.getPodList();
        c.close();
        assert.equal(k.seen.at(-1)?.authorization, want);
      }
    } finally {
      await k.close();
    }
  });

  it('the default token path is the service account token', () => {
    const mem = memoryFiles(new Map());
    assert.throws(
      () => new KubeletClient({ skipKubeletVerification: true, tokenPath: '' }, mem),
      (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message.startsWith('k8s: unable to load token: '),
    );
    assert.deepEqual(mem.reads, ['/var/run/secrets/kubernetes.io/serviceaccount/token']);
  });
});

describe('kubelet client rules: the kubelet CA', () => {
  it('every certificate of the CA bundle is trusted, the second one included', async () => {
    const k = await startKubelet(podList, serving);
    const bundle = `${otherCa.certPem}\n${ca.certPem}`;
    const c = new KubeletClient(
      { securePort: k.port, tokenPath: '/token', kubeletCaPath: '/ca.crt' },
      {
        readFile: memoryFiles(
          new Map([
            ['/ca.crt', bundle],
            ['/token', 'tok'],
          ]),
        ).readFile,
      },
    );
    try {
      assert.equal((await c.getPodList()).toString(), POD_LIST);
    } finally {
      c.close();
      await k.close();
    }
  });

  it('a bundle with a certificate that does not parse is refused with the parser error as cause', () => {
    const broken = `${ca.certPem}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`;
    assert.throws(
      () =>
        new KubeletClient(
          { tokenPath: '/token', kubeletCaPath: '/ca.crt' },
          memoryFiles(
            new Map([
              ['/ca.crt', broken],
              ['/token', 'tok'],
            ]),
          ),
        ),
      (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message === 'k8s: unable to parse kubelet CA /ca.crt' && e.cause instanceof Error,
    );
  });

  it('a file that cannot be read: its error in the message and as the cause; rule errors have no cause', () => {
    assert.throws(
      () => new KubeletClient({ tokenPath: '/token', kubeletCaPath: '/ca.crt' }, memoryFiles(new Map())),
      (e: unknown) =>
        isZtwimError(e, 'ERR_CONFIG') &&
        e.message === "k8s: unable to load kubelet CA: ENOENT: no such file, open '/ca.crt'" &&
        (e.cause as { code?: string }).code === 'ENOENT',
    );
    assert.throws(
      () => new KubeletClient({ tokenPath: '/token', kubeletCaPath: '/ca.crt' }, memoryFiles(new Map([['/ca.crt', 'no pem here']]))),
      (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message === 'k8s: unable to parse kubelet CA: no certificates in /ca.crt' && e.cause === undefined,
    );
    assert.throws(
      () => new KubeletClient({ readOnlyPort: 1, securePort: 2 }),
      (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && e.message === 'k8s: cannot use both the read-only and secure port' && e.cause === undefined,
    );
  });

  it('a client certificate and key are read from their paths', () => {
    const mem = memoryFiles(
      new Map([
        ['/c.pem', serving.certPem],
        ['/k.pem', serving.keyPem],
      ]),
    );
    const c = new KubeletClient({ skipKubeletVerification: true, certificatePath: '/c.pem', privateKeyPath: '/k.pem' }, mem);
    c.close();
    assert.deepEqual(mem.reads, ['/c.pem', '/k.pem']);
  });
});
