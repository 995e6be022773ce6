import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger, Metrics } from '@ztwim/core';

/** Counts and times every call, and logs failures once, at a level chosen by the code. */
export function telemetryInterceptor(metrics: Metrics, log: Logger): Interceptor {
  return (next) => async (req) => {
    const service = req.service.typeName;
    const method = req.method.name;
    const end = metrics.rpcLatency.startTimer({ service, method });
    try {
      const res = await next(req);
      metrics.rpcCalls.inc({ service, method, code: 'OK' });
      return res;
    } catch (e) {
      const ce = ConnectError.from(e);
      metrics.rpcCalls.inc({ service, method, code: Code[ce.code] });
      const fields = { service, method, code: Code[ce.code], error: ce.rawMessage };
      if (ce.code === Code.Internal || ce.code === Code.Unknown) log.error(fields, 'API call failed');
      else log.debug(fields, 'API call rejected');
      throw ce;
    } finally {
      end();
    }
  };
}
