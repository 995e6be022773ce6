import { runMain } from './run-main.ts';
import { rootCommand } from './root.ts';

await runMain(rootCommand());
