// The `unix` workload attestor (SPIRE pkg/agent/plugin/workloadattestor/unix, Linux part):
// uid, user, gid, group, supplementary_gid, supplementary_group and, with discoverWorkloadPath,
// path and sha256 of the running executable.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

import { ZtwimError, configError, silentLogger, type Logger } from '@ztwim/core';

import { effectiveId, readExePath, readProcStatusSync, type ProcStatus } from './proc-linux.ts';
import { loadUserDbSync } from './user-db.ts';
import type { PinnedProcess, Selector, WorkloadAttestor } from './workload-attestor.ts';

export const UNIX_SELECTOR_TYPE = 'unix';

export interface UnixAttestorConfig {
  /** `discover_workload_path`: add `path` and `sha256` selectors (default false). */
  readonly discoverWorkloadPath?: boolean;
  /**
   * `workload_size_limit` in bytes for the sha256 selector: 0 = no limit (default), negative =
   * never hash. An executable over the limit fails attestation, as in SPIRE.
   */
  readonly workloadSizeLimit?: number;
  /** procfs mount (SPIRE's HOST_PROC); default `/proc`. */
  readonly procRoot?: string;
  readonly passwdFile?: string;
  readonly groupFile?: string;
  readonly logger?: Logger;
}

const HASH_CHUNK = 1 << 20;

function selector(kind: string, value: string | number): Selector {
  return { type: UNIX_SELECTOR_TYPE, value: `${kind}:${value}` };
}

function internal(message: string, pid: number, cause?: unknown): ZtwimError {
  return new ZtwimError('ERR_INTERNAL', message, cause === undefined ? { fields: { pid } } : { cause, fields: { pid } });
}

/**
 * SHA-256 of an open file, refusing files over `limit` bytes (limit 0 = any size). The size is
 * taken from fstat of the same handle that is hashed, so it cannot be swapped in between.
 */
export async function sha256OfFile(path: string, limit: number, signal?: AbortSignal): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (limit > 0 && st.size > limit) {
      throw new ZtwimError('ERR_INTERNAL', `unix: sha256 digest: workload ${path} exceeds size limit (${st.size} > ${limit})`, {
        fields: { path, size: st.size, limit },
      });
    }
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(HASH_CHUNK);
    let total = 0;
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      // The file grew past the limit after fstat: still refuse it.
      if (limit > 0 && total > limit) {
        throw new ZtwimError('ERR_INTERNAL', `unix: sha256 digest: workload ${path} exceeds size limit (${total} > ${limit})`, {
          fields: { path, size: total, limit },
        });
      }
      h.update(buf.subarray(0, bytesRead));
    }
    return h.digest('hex');
  } finally {
    await fh.close();
  }
}

export class UnixWorkloadAttestor implements WorkloadAttestor {
  readonly name = UNIX_SELECTOR_TYPE;
  readonly #discoverWorkloadPath: boolean;
  readonly #workloadSizeLimit: number;
  readonly #procRoot: string;
  readonly #userDbConfig: { passwdFile?: string; groupFile?: string };
  readonly #log: Logger;

  constructor(config: UnixAttestorConfig = {}) {
    const limit = config.workloadSizeLimit ?? 0;
    if (!Number.isSafeInteger(limit)) throw configError('unix: workload_size_limit must be an integer');
    this.#discoverWorkloadPath = config.discoverWorkloadPath ?? false;
    this.#workloadSizeLimit = limit;
    this.#procRoot = config.procRoot ?? '/proc';
    this.#userDbConfig = {
      ...(config.passwdFile === undefined ? {} : { passwdFile: config.passwdFile }),
      ...(config.groupFile === undefined ? {} : { groupFile: config.groupFile }),
    };
    this.#log = config.logger ?? silentLogger();
  }

  async attest(pid: number, signal?: AbortSignal, pinned?: PinnedProcess): Promise<Selector[]> {
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new ZtwimError('ERR_INVALID_ARGUMENT', 'unix: pid must be a positive integer');
    signal?.throwIfAborted();
    const procDir = `${this.#procRoot}/${pid}`;

    let status: ProcStatus;
    try {
      // procfs: synchronous (no disk wait; async would cost thread-pool round trips per call).
      status = pinned === undefined ? readProcStatusSync(procDir) : pinned.status();
    } catch (e) {
      throw internal('unix: failed to get process', pid, e);
    }
    const db = loadUserDbSync(this.#userDbConfig);
    signal?.throwIfAborted();

    const out: Selector[] = [];
    const uid = effectiveId(status.uids);
    out.push(selector('uid', uid));
    const user = db.userName(uid);
    if (user !== undefined) out.push(selector('user', user));

    const gid = effectiveId(status.gids);
    out.push(selector('gid', gid));
    const group = db.groupName(gid);
    if (group !== undefined) out.push(selector('group', group));

    for (const sg of status.groups) {
      out.push(selector('supplementary_gid', sg));
      const name = /^\d+$/.test(sg) ? db.groupName(Number(sg)) : undefined;
      if (name !== undefined) out.push(selector('supplementary_group', name));
    }

    if (this.#discoverWorkloadPath) {
      let path: string;
      try {
        path = await readExePath(procDir);
      } catch (e) {
        throw internal('unix: path lookup failed', pid, e);
      }
      out.push(selector('path', path));

      if (this.#workloadSizeLimit >= 0) {
        // Hash through /proc/<pid>/exe: the file the process runs, even if its path was replaced
        // or lives in another mount namespace.
        let digest: string;
        try {
          digest = await sha256OfFile(`${procDir}/exe`, this.#workloadSizeLimit, signal);
        } catch (e) {
          if (signal?.aborted) throw signal.reason;
          this.#log.warn({ pid, path, err: e }, 'unix: cannot compute workload sha256');
          if (e instanceof ZtwimError) throw e;
          throw internal('unix: sha256 digest failed', pid, e);
        }
        out.push(selector('sha256', digest));
      }
    }
    return out;
  }
}
