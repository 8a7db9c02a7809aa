/** The name of the test test/shard.ts declares behind each file's tests (test/run.ts hides it). */
export const MARKER = '(all tests of the file ran)';
