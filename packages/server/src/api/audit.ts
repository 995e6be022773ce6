// SPIRE's audit log (`audit_log_enabled = true`): one "API accessed" line per Server API call, with
// SPIRE's field names (pkg/server/api/audit): type=audit, status success|error, status_code and
// status_message on errors, method, service, caller_addr, caller_id, and the request's fields.
import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { toJson } from '@bufbuild/protobuf';
import { wireSpiffeIdString, type Logger } from '@ztwim/core';
import { callerKey, transportKey } from './caller.ts';

export const AUDIT_MESSAGE = 'API accessed';

/** Request fields that carry secrets or key material: never written to the audit log. */
const SECRET_FIELDS = new Set(['token', 'csr', 'csrs', 'payload', 'challenge_response', 'params', 'x509_svid', 'bundle']);

const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * The request as flat fields: top-level scalars by their proto name, SPIFFE IDs as URIs, selectors
 * as `type:value` lists, lists of messages as their count (`entries_count`); secrets left out.
 */
export function requestFields(json: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return out;
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    const name = snake(k);
    if (SECRET_FIELDS.has(name)) continue;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[name] = v;
    else if (Array.isArray(v)) {
      if (v.every((x) => typeof x === 'string')) out[name] = v.join(',');
      else if (v.every(isSelector)) out[name] = v.map((s) => `${s.type}:${s.value}`).join(',');
      else out[`${name}_count`] = v.length;
    } else if (isSpiffeId(v)) out[name] = wireSpiffeIdString({ trustDomain: v.trustDomain, path: v.path ?? '' });
    else if (typeof v === 'object' && v !== null) {
      // one level down (a filter, an entry): its scalars and IDs, prefixed
      for (const [ik, iv] of Object.entries(requestFields(v))) out[`${name}_${ik}`] = iv;
    }
  }
  return out;
}

function isSpiffeId(v: unknown): v is { trustDomain: string; path?: string } {
  return typeof v === 'object' && v !== null && typeof (v as { trustDomain?: unknown }).trustDomain === 'string';
}

function isSelector(v: unknown): v is { type: string; value: string } {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string' && typeof (v as { value?: unknown }).value === 'string';
}

/** Outermost interceptor: sees refusals by the authorization policy as well as answered calls. */
export function auditInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    const fields: Record<string, unknown> = { type: 'audit', method: req.method.name, service: req.service.typeName };
    if (!req.stream) {
      try {
        Object.assign(fields, requestFields(toJson(req.method.input, req.message as never)));
      } catch {
        /* a request that does not serialise is still audited, without its fields */
      }
    }
    const callerFields = (): Record<string, string> => {
      const transport = req.contextValues.get(transportKey);
      const caller = req.contextValues.get(callerKey);
      return {
        ...(transport.kind === 'tls' ? { caller_addr: transport.remoteAddress } : {}),
        ...(caller.id === undefined ? {} : { caller_id: caller.id.toString() }),
      };
    };
    try {
      const res = await next(req);
      log.info({ ...fields, ...callerFields(), status: 'success' }, AUDIT_MESSAGE);
      return res;
    } catch (e) {
      const ce = ConnectError.from(e);
      log.info({ ...fields, ...callerFields(), status: 'error', status_code: Code[ce.code], status_message: ce.rawMessage }, AUDIT_MESSAGE);
      throw e;
    }
  };
}
