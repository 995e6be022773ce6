// The kubelet client against real HTTPS servers on 127.0.0.1 (port 0) with openssl-made
// certificates: each verification mode, each way to authenticate, credential reload.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';

import { isZtwimError } from '@ztwim/core';
import { FakeClock } from '@ztwim/testkit';

import { KubeletClient } from './k8s-kubelet-client.ts';

let dir: string;
const f = (name: string): string => join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and a leaf signed by it for `san`, written as <name>.key / <name>.crt. */
function issue(ca: string, name: string, san: string, extra: string[] = []): void {
  openssl(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    f(`${name}.key`),
    '-out',
    f(`${name}.csr`),
    '-subj',
    `/CN=${name}`,
  );
  writeFileSync(f(`${name}.ext`), [`subjectAltName=${san}`, ...extra].join('\n'));
  openssl(
    'x509',
    '-req',
    '-in',
    f(`${name}.csr`),
    '-CA',
    f(`${ca}.crt`),
    '-CAkey',
    f(`${ca}.key`),
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    f(`${name}.crt`),
    '-extfile',
    f(`${name}.ext`),
  );
}

function makeCa(name: string): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    f(`${name}.key`),
    '-out',
    f(`${name}.crt`),
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  );
}

interface Seen {
  readonly authorization: string | undefined;
  readonly clientCn: string | undefined;
}

interface Kubelet {
  readonly port: number;
  readonly seen: Seen[];
  close(): Promise<void>;
}

const POD_LIST = JSON.stringify({ kind: 'PodList', items: [] });

async function startKubelet(cert: string, opts: { status?: number; plain?: boolean } = {}): Promise<Kubelet> {
  const seen: Seen[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const sock = req.socket as TLSSocket;
    const peer = typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate() : undefined;
    seen.push({ authorization: req.headers.authorization, clientCn: [peer?.subject?.CN].flat()[0] });
    if (req.url !== '/pods') {
      res.writeHead(404).end('not found');
      return;
    }
    const status = opts.status ?? 200;
    res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? POD_LIST : 'Unauthorized');
  };
  const server =
    opts.plain === true
      ? http.createServer(handler)
      : https.createServer(
          { cert: readFileSync(f(`${cert}.crt`)), key: readFileSync(f(`${cert}.key`)), requestCert: true, rejectUnauthorized: false },
          handler,
        );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ztwim-kubelet-'));
  makeCa('ca');
  makeCa('other-ca');
  // The kubelet's serving certificate names the node (as kubelet serving certs do), not 127.0.0.1.
  issue('ca', 'kubelet', 'DNS:localhost');
  issue('ca', 'wrong-name', 'DNS:node-1');
  issue('ca', 'agent-client', 'DNS:agent', ['extendedKeyUsage=clientAuth']);
  writeFileSync(f('token'), 'token-one\n');
});

after(() => rmSync(dir, { recursive: true, force: true }));

async function fetchWith(k: Kubelet, config: ConstructorParameters<typeof KubeletClient>[0]): Promise<Buffer> {
  const c = new KubeletClient({ securePort: k.port, tokenPath: f('token'), ...config });
  try {
    return await c.getPodList();
  } finally {
    c.close();
  }
}

describe('kubelet client: verification modes', () => {
  it('skip_kubelet_verification accepts a certificate from an unknown CA', async () => {
    const k = await startKubelet('kubelet');
    try {
      assert.equal((await fetchWith(k, { skipKubeletVerification: true, kubeletCaPath: f('other-ca.crt') })).toString(), POD_LIST);
    } finally {
      await k.close();
    }
  });

  it('kubelet_ca_path with the node name: chain and hostname verified', async () => {
    const k = await startKubelet('kubelet');
    try {
      const c = new KubeletClient({ securePort: k.port, tokenPath: f('token'), kubeletCaPath: f('ca.crt'), nodeName: 'localhost' });
      assert.equal(c.url, `https://localhost:${k.port}/pods`);
      assert.equal((await c.getPodList()).toString(), POD_LIST);
      c.close();
    } finally {
      await k.close();
    }
  });

  it('a certificate naming another node is refused when the node name is known', async () => {
    const k = await startKubelet('wrong-name');
    try {
      await assert.rejects(
        fetchWith(k, { kubeletCaPath: f('ca.crt'), nodeName: 'localhost' }),
        (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && /unable to perform request/.test(e.message) && /localhost/.test(e.message),
      );
    } finally {
      await k.close();
    }
  });

  it('without a node name: 127.0.0.1, chain verified, hostname not', async () => {
    const k = await startKubelet('wrong-name');
    try {
      const c = new KubeletClient({ securePort: k.port, tokenPath: f('token'), kubeletCaPath: f('ca.crt') });
      assert.equal(c.url, `https://127.0.0.1:${k.port}/pods`);
      assert.equal((await c.getPodList()).toString(), POD_LIST);
      c.close();
    } finally {
      await k.close();
    }
  });

  it('without a node name a certificate from another CA is still refused', async () => {
    const k = await startKubelet('kubelet');
    try {
      await assert.rejects(fetchWith(k, { kubeletCaPath: f('other-ca.crt') }), /unable to perform request/);
    } finally {
      await k.close();
    }
  });
});

describe('kubelet client: authentication', () => {
  it('sends the token as a bearer token', async () => {
    const k = await startKubelet('kubelet');
    try {
      await fetchWith(k, { skipKubeletVerification: true });
      assert.equal(k.seen[0]?.authorization, 'Bearer token-one');
    } finally {
      await k.close();
    }
  });

  it('a client certificate instead of a token', async () => {
    const k = await startKubelet('kubelet');
    try {
      await fetchWith(k, { skipKubeletVerification: true, certificatePath: f('agent-client.crt'), privateKeyPath: f('agent-client.key') });
      assert.deepEqual(k.seen[0], { authorization: undefined, clientCn: 'agent-client' });
    } finally {
      await k.close();
    }
  });

  it('use_anonymous_authentication sends nothing (and needs no token file)', async () => {
    const k = await startKubelet('kubelet');
    try {
      await fetchWith(k, { skipKubeletVerification: true, useAnonymousAuthentication: true, tokenPath: f('missing-token') });
      assert.equal(k.seen[0]?.authorization, undefined);
    } finally {
      await k.close();
    }
  });

  it('a refused request names the status and the kubelet body', async () => {
    const k = await startKubelet('kubelet', { status: 401 });
    try {
      await assert.rejects(
        fetchWith(k, { skipKubeletVerification: true }),
        (e: unknown) => isZtwimError(e, 'ERR_INTERNAL') && e.message === 'k8s: unexpected status code on pods response: 401 Unauthorized',
      );
    } finally {
      await k.close();
    }
  });

  it('the token is read again after reload_interval', async () => {
    const k = await startKubelet('kubelet');
    const clock = new FakeClock();
    writeFileSync(f('rotating-token'), 'first');
    const c = new KubeletClient({ securePort: k.port, tokenPath: f('rotating-token'), skipKubeletVerification: true, reloadIntervalMs: 60_000 }, { clock });
    try {
      await c.getPodList();
      writeFileSync(f('rotating-token'), 'second');
      clock.advance(59_999);
      await c.getPodList();
      clock.advance(1);
      await c.getPodList();
      assert.deepEqual(
        k.seen.map((s) => s.authorization),
        ['Bearer first', 'Bearer first', 'Bearer second'],
      );
      // A token that cannot be read at reload time: the previous one stays in use.
      rmSync(f('rotating-token'));
      clock.advance(60_000);
      await c.getPodList();
      assert.equal(k.seen[3]?.authorization, 'Bearer second');
    } finally {
      c.close();
      await k.close();
    }
  });
});

describe('kubelet client: configuration', () => {
  it('the read-only port: plain HTTP on 127.0.0.1, no credentials read', async () => {
    const k = await startKubelet('kubelet', { plain: true });
    try {
      const c = new KubeletClient({ readOnlyPort: k.port, tokenPath: f('missing-token') });
      assert.equal(c.url, `http://127.0.0.1:${k.port}/pods`);
      assert.equal((await c.getPodList()).toString(), POD_LIST);
      assert.equal(k.seen[0]?.authorization, undefined);
      c.close();
    } finally {
      await k.close();
    }
  });

  const refused: Array<[string, ConstructorParameters<typeof KubeletClient>[0], RegExp]> = [
    ['both ports', { readOnlyPort: 10255, securePort: 10250 }, /cannot use both the read-only and secure port/],
    ['a missing token file', { skipKubeletVerification: true, tokenPath: '/nonexistent/token' }, /unable to load token: .*\/nonexistent\/token/],
    ['a missing CA file', { kubeletCaPath: '/nonexistent/ca.crt' }, /unable to load kubelet CA: .*\/nonexistent\/ca\.crt/],
    ['a CA file without certificates', { kubeletCaPath: '/etc/hostname' }, /unable to parse kubelet CA: no certificates/],
    [
      'a certificate without its key',
      { skipKubeletVerification: true, certificatePath: '/x.crt' },
      /the private key path is required with the certificate path/,
    ],
    [
      'a key without its certificate',
      { skipKubeletVerification: true, privateKeyPath: '/x.key' },
      /the certificate path is required with the private key path/,
    ],
  ];
  for (const [name, config, re] of refused) {
    it(`refuses ${name} at construction`, () => {
      assert.throws(
        () => new KubeletClient({ tokenPath: f('token'), ...config }),
        (e: unknown) => isZtwimError(e, 'ERR_CONFIG') && re.test(e.message),
      );
    });
  }

  it('the default CA is the service account ca.crt', () => {
    assert.throws(() => new KubeletClient({ tokenPath: f('token') }), /\/var\/run\/secrets\/kubernetes.io\/serviceaccount\/ca\.crt/);
  });
});
