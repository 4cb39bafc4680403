// Compiles one TypeScript entry point (and what it imports) for a child process, with the
// project's compiler options, into a fresh temporary directory. Tests that spawn a service
// process run what the sources say now, without depending on a prior `npm run build`.

import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CompiledChild {
  /** The compiled entry point, for `node` or child_process.fork. */
  file: string;
  /** Deletes the compiled files. */
  remove(): Promise<void>;
}

/** Compiles `entry` (a path relative to the repository root) with everything it imports. */
export async function compileForChildProcess(entry: string): Promise<CompiledChild> {
  const outDir = await mkdtemp(join(tmpdir(), 'readstate-child-'));
  // The compiled files import packages by name: let them find the project's.
  await symlink(join(ROOT, 'node_modules'), join(outDir, 'node_modules'), 'dir');
  // ...and read them as the ES modules they are.
  await writeFile(join(outDir, 'package.json'), '{"type":"module"}\n');
  const config = join(outDir, 'tsconfig.json');
  await writeFile(
    config,
    JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: { outDir, rootDir: ROOT, typeRoots: [join(ROOT, 'node_modules/@types')], sourceMap: false },
      files: [join(ROOT, entry)],
      include: [],
    }),
  );
  try {
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', config], { timeout: 120_000 });
  } catch (error) {
    const output = (error as { stdout?: string }).stdout ?? '';
    throw new Error(`tsc failed for ${entry}:\n${output}`, { cause: error });
  }
  return {
    file: join(outDir, relative(ROOT, join(ROOT, entry)).replace(/\.ts$/, '.js')),
    remove: () => rm(outDir, { recursive: true, force: true }),
  };
}
