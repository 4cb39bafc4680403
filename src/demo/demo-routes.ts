// The demo page's server side, development only: the page at `/`, its files under `/demo/`,
// and `GET /dev/demo-users`, which hands out the demo users with signed tokens. In
// production none of these routes exists, so they fall through to the API's 404.
//
// The page needs no build step of its own: its TypeScript is compiled with the rest of the
// project by `npm run build`, and served from dist/ next to the typed client it imports
// (dist/src/client/). The one library the client needs, msgpackr, is served from
// node_modules as the ES modules it ships, named by the page's import map.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type uWS from 'uWebSockets.js';
import type { Config } from '../config.js';
import { UserTokens } from '../gateway/user-tokens.js';
import { DEMO_CHANNELS, DEMO_USERS, type DemoDirectory } from './demo-directory.js';

/** Long enough for a demo session; the page fetches fresh tokens whenever it reconnects. */
const DEMO_TOKEN_TTL_SECONDS = 12 * 3600;

/** URL prefix of the compiled browser code: the dist/src/ tree, so the modules' relative imports resolve. */
const COMPILED_URL = '/demo/js/';
/** Compiled folders the page imports from (relative to dist/src/). */
const COMPILED_FOLDERS = ['demo/browser', 'client'];
/** msgpackr's browser entry and the modules it imports. */
const MSGPACKR_FILES = ['index.js', 'pack.js', 'unpack.js', 'iterators.js'];

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

export interface MountDemoOptions {
  /** Nothing is mounted when nodeEnv is 'production'; tokens are signed with the gateway's secret. */
  config: Pick<Config, 'nodeEnv' | 'jwtSecret'>;
  log: Logger;
}

interface StaticFile {
  contentType: string;
  body: Buffer;
}

/**
 * Registers the demo's routes on the gateway's app (GatewayOptions.mountRoutes). In
 * production it registers nothing.
 */
export function mountDemo(app: uWS.TemplatedApp, { config, log }: MountDemoOptions): void {
  if (config.nodeEnv === 'production') return;
  const tokens = new UserTokens(config.jwtSecret);
  const { files, missing } = loadStaticFiles(projectRoot());
  if (missing.length > 0) {
    log.warn({ missing }, 'demo page files are missing (run `npm run build`); / answers 503 until the gateway restarts with them');
  }

  for (const [url, file] of files) {
    app.get(url, (res) => {
      res.writeStatus('200 OK').writeHeader('content-type', file.contentType).writeHeader('cache-control', 'no-cache').writeHeader('x-content-type-options', 'nosniff').end(file.body);
    });
  }
  if (!files.has('/')) {
    app.get('/', (res) => {
      res.writeStatus('503 Service Unavailable').writeHeader('content-type', 'text/plain; charset=utf-8').end(`The demo page is not built: run \`npm run build\`, then restart the gateway.\nMissing: ${missing.join(', ')}\n`);
    });
  }

  app.get('/dev/demo-users', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    demoDirectory(tokens).then(
      (directory) => {
        if (aborted) return;
        res.cork(() => {
          res.writeStatus('200 OK').writeHeader('content-type', 'application/json').writeHeader('cache-control', 'no-store').end(JSON.stringify(directory));
        });
      },
      (error: unknown) => {
        log.error({ err: error }, 'signing demo user tokens failed');
        if (aborted) return;
        res.cork(() => {
          res.writeStatus('500 Internal Server Error').writeHeader('content-type', 'application/json').end(JSON.stringify({ code: 0, message: 'Internal error' }));
        });
      },
    );
  });
}

/** The page's address, for `npm start` to print; null in production, where there is no page. */
export function demoPageUrl(config: Pick<Config, 'nodeEnv' | 'host'>, port: number): string | null {
  if (config.nodeEnv === 'production') return null;
  // A wildcard bind address is not one a browser can open; loopback reaches it.
  const reachable = config.host === '0.0.0.0' ? '127.0.0.1' : config.host === '::' ? '::1' : config.host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}/`;
}

async function demoDirectory(tokens: UserTokens): Promise<DemoDirectory> {
  const users = await Promise.all(DEMO_USERS.map(async (user) => ({ ...user, token: await tokens.sign(user.id, DEMO_TOKEN_TTL_SECONDS) })));
  return { users, channels: [...DEMO_CHANNELS] };
}

/**
 * Every file the page loads, by URL, read once now (they are small, and serving from memory
 * keeps the event loop free of file I/O); and the files that should exist but do not.
 */
function loadStaticFiles(root: string): { files: Map<string, StaticFile>; missing: string[] } {
  const sources = new Map<string, string>([
    ['/', join(root, 'src/demo/page/index.html')],
    ['/demo/demo.css', join(root, 'src/demo/page/demo.css')],
  ]);
  for (const name of MSGPACKR_FILES) sources.set(`/demo/vendor/msgpackr/${name}`, join(root, 'node_modules/msgpackr', name));
  const missing: string[] = [];
  for (const folder of COMPILED_FOLDERS) {
    const path = join(root, 'dist/src', folder);
    if (!existsSync(path)) {
      missing.push(path);
      continue;
    }
    for (const name of readdirSync(path)) {
      if (name.endsWith('.js')) sources.set(`${COMPILED_URL}${folder}/${name}`, join(path, name));
    }
  }

  const files = new Map<string, StaticFile>();
  for (const [url, path] of sources) {
    if (!existsSync(path)) {
      missing.push(path);
      continue;
    }
    const extension = path.slice(path.lastIndexOf('.'));
    files.set(url, { contentType: CONTENT_TYPES[extension], body: readFileSync(path) });
  }
  // Without its entry module the page is only a shell.
  if (!files.has(`${COMPILED_URL}demo/browser/demo-page.js`)) files.delete('/');
  return { files, missing };
}

/** The folder holding package.json: this module runs from src/demo/ (tests) or dist/src/demo/. */
function projectRoot(): string {
  let folder = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(folder, 'package.json'))) {
    const parent = dirname(folder);
    if (parent === folder) throw new Error('demo: cannot find the project root (no package.json above this module)');
    folder = parent;
  }
  return folder;
}
