// Entry point of bench/sdk.ts's worker threads. A worker thread of Node 20 does not inherit the
// tsx loader that `--import tsx` installed on the main thread, so it registers tsx's ESM hooks
// itself before loading the TypeScript worker (bench/lib/sdk-worker.ts).
import { register } from 'tsx/esm/api';

register();
await import('./sdk-worker.ts');
