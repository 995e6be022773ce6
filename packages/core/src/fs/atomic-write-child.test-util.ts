/**
 * Child process for the atomicWriteFile tests, run under strace: replaces <path> with <content>.
 * Usage: atomic-write-child <path> <content>
 */
import { atomicWriteFile } from './atomic-write.ts';

const [path, content] = process.argv.slice(2);
if (path === undefined || content === undefined) throw new Error('usage: atomic-write-child <path> <content>');
await atomicWriteFile(path, content, 0o600);
process.stdout.write('written\n');
