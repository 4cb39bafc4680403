// Configuration: docs/protocol.md's defaults, checked values, and no development secrets in production.

import { describe, expect, it } from 'vitest';
import { ConfigError, DEV_ADMIN_TOKEN, DEV_JWT_SECRET, loadConfig } from '../../src/config.js';

describe('loadConfig', () => {
  it('applies the documented defaults, with development secrets outside production', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      cassandraContactPoints: [{ host: '127.0.0.1', port: 9042 }],
      cassandraKeyspace: 'readstates',
      cacheCapacity: 1_000_000,
      flushDelayMs: 30_000,
      heartbeatIntervalMs: 41_250,
      rateLimit: 120,
      rateWindowMs: 60_000,
      workerId: 0,
      jwtSecret: DEV_JWT_SECRET,
      adminToken: DEV_ADMIN_TOKEN,
      devSecrets: true,
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '0.0.0.0',
      CASSANDRA_CONTACT_POINTS: 'a:9142, b ,[::1]:9043',
      CASSANDRA_KEYSPACE: 'ks_1',
      GATEWAY_JWT_SECRET: 's',
      GATEWAY_ADMIN_TOKEN: 't',
      READSTATE_CACHE_CAPACITY: '5000',
      READSTATE_FLUSH_DELAY_MS: '0',
      GATEWAY_HEARTBEAT_INTERVAL_MS: '1000',
      GATEWAY_RATE_LIMIT: '10',
      GATEWAY_RATE_WINDOW_MS: '100',
      GATEWAY_WORKER_ID: '1023',
    });
    expect(config).toMatchObject({
      port: 9000,
      host: '0.0.0.0',
      cassandraContactPoints: [
        { host: 'a', port: 9142 },
        { host: 'b', port: 9042 },
        { host: '::1', port: 9043 },
      ],
      cassandraKeyspace: 'ks_1',
      jwtSecret: 's',
      adminToken: 't',
      devSecrets: false,
      cacheCapacity: 5000,
      flushDelayMs: 0,
      heartbeatIntervalMs: 1000,
      rateLimit: 10,
      rateWindowMs: 100,
      workerId: 1023,
    });
  });

  it('reports every bad value at once', () => {
    const bad = { PORT: '70000', GATEWAY_WORKER_ID: '1024', GATEWAY_RATE_LIMIT: '0', READSTATE_CACHE_CAPACITY: '1e6', CASSANDRA_KEYSPACE: 'x; DROP', CASSANDRA_CONTACT_POINTS: 'a:b' };
    try {
      loadConfig(bad);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as ConfigError).message;
      for (const name of Object.keys(bad)) expect(message).toContain(name);
    }
  });

  it('refuses to run in production without real secrets', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/GATEWAY_JWT_SECRET is required[\s\S]*GATEWAY_ADMIN_TOKEN is required/);
    expect(() => loadConfig({ NODE_ENV: 'production', GATEWAY_JWT_SECRET: 'short', GATEWAY_ADMIN_TOKEN: 'x'.repeat(16) })).toThrow(/at least 16/);
    expect(loadConfig({ NODE_ENV: 'production', GATEWAY_JWT_SECRET: 'x'.repeat(32), GATEWAY_ADMIN_TOKEN: 'y'.repeat(32) }).devSecrets).toBe(false);
  });
});
