// A worker thread of bench/sdk.ts's all-cores rows: loads the fixtures once (workerData.dir), then
// answers each {kind, ms} message with the LoopResult of that operation run for ms.
import { parentPort, workerData } from 'node:worker_threads';
import { loopFor, sdkOps, type CryptoKind } from './sdk-ops.ts';

const ops = sdkOps((workerData as { dir: string }).dir);
parentPort?.on('message', (m: { kind: CryptoKind; ms: number }) => {
  void loopFor(ops[m.kind], m.ms).then((r) => parentPort?.postMessage(r));
});
