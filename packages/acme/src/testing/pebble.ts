/**
 * Test-only: runs Let's Encrypt's pebble ACME test CA (Debian `pebble`, installed by
 * scripts/setup-interop.sh) on free ports. Not exported from the package index.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { request } from 'node:https';
import { join } from 'node:path';

/** Ports that were free a moment ago (pebble needs them in its config file). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const s = createServer();
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

export interface PebbleOptions {
  /** Where pebble's config goes. */
  readonly dir: string;
  /** pebble's own HTTPS listener certificate (for 127.0.0.1) and the CA that issued it. */
  readonly listenerCertPath: string;
  readonly listenerKeyPath: string;
  readonly listenerCaPem: string;
  /** Where pebble's VA connects for http-01 and tls-alpn-01 (default: fresh free ports). */
  readonly httpPort?: number;
  readonly tlsPort?: number;
}

export interface Pebble {
  readonly directoryUrl: string;
  readonly managementUrl: string;
  readonly httpPort: number;
  readonly tlsPort: number;
  readonly process: ChildProcess;
  /** Everything pebble printed so far. */
  log(): string;
  /** Pebble's root and intermediate: what a client must trust to verify issued certificates. */
  issuerPem(): Promise<string>;
  stop(): Promise<void>;
}

function getText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: ${String(res.statusCode)}`))));
    })
      .on('error', reject)
      .end();
  });
}

/**
 * Starts pebble. No PEBBLE_VA_ALWAYS_VALID: pebble really validates the challenges against us
 * ("localhost" resolves through /etc/hosts, so no DNS server is needed).
 */
export async function startPebble(o: PebbleOptions): Promise<Pebble> {
  const [acmePort, mgmtPort, freeHttp, freeTls] = await freePorts(4);
  const httpPort = o.httpPort ?? (freeHttp as number);
  const tlsPort = o.tlsPort ?? (freeTls as number);
  const cfg = join(o.dir, 'pebble.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: o.listenerCertPath,
        privateKey: o.listenerKeyPath,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  let out = '';
  const child = spawn('pebble', ['-config', cfg], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes('ACME directory available')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (e) => reject(new Error(`cannot start pebble (apt-get install -y pebble): ${e.message}`)));
    child.once('exit', (code) => reject(new Error(`pebble exited with ${String(code)}: ${out}`)));
  });
  const managementUrl = `https://127.0.0.1:${mgmtPort}`;
  return {
    directoryUrl: `https://127.0.0.1:${acmePort}/dir`,
    managementUrl,
    httpPort,
    tlsPort,
    process: child,
    log: () => out,
    async issuerPem() {
      const root = await getText(`${managementUrl}/roots/0`, o.listenerCaPem);
      const intermediate = await getText(`${managementUrl}/intermediates/0`, o.listenerCaPem);
      return `${root}\n${intermediate}`;
    },
    stop() {
      return new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}
