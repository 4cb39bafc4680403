import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_USERS } from '../../src/demo/demo-directory.js';
import { DEV_CONTACT_POINTS, dropKeyspace, uniqueKeyspace } from '../support/cassandra-nodes.js';
import { AdminApi, type GatewayProcess, startGateway } from '../support/gateway-harness.js';
import { ensureCassandra } from './chromium.js';

// The demo is development-only: a production gateway hands out no tokens, serves no page and
// seeds nothing. (demo-page.test.ts shows the same routes answering in development, so these
// 404s are the production switch at work, not routes that were never mounted.)

const keyspace = uniqueKeyspace('demo_prod');
let gateway: GatewayProcess | undefined;

beforeAll(async () => {
  await ensureCassandra();
  // startGateway passes secrets long enough for production.
  gateway = await startGateway({ NODE_ENV: 'production', CASSANDRA_KEYSPACE: keyspace });
});

afterAll(async () => {
  await gateway?.stop();
  await dropKeyspace(DEV_CONTACT_POINTS, keyspace);
});

describe('the demo in production', () => {
  it('is absent: no page, no files, no demo tokens', async () => {
    for (const path of ['/', '/?user=1', '/demo/demo.css', '/demo/js/demo/browser/demo-page.js', '/dev/demo-users']) {
      const response = await fetch(`${gateway!.httpUrl}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
    }
  });

  it('seeds nothing', async () => {
    const admin = new AdminApi(gateway!.httpUrl);
    for (const user of DEMO_USERS) expect(await admin.readStates(user.id)).toEqual([]);
  });
});
