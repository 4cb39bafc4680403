import { describe, expect, it } from 'vitest';
import { demoPageUrl } from '../../src/demo/demo-routes.js';

describe('demoPageUrl', () => {
  it('is the address a browser can open, and none in production', () => {
    expect(demoPageUrl({ nodeEnv: 'development', host: '127.0.0.1' }, 8080)).toBe('http://127.0.0.1:8080/');
    expect(demoPageUrl({ nodeEnv: 'test', host: '0.0.0.0' }, 8080)).toBe('http://127.0.0.1:8080/');
    expect(demoPageUrl({ nodeEnv: 'development', host: '::' }, 8081)).toBe('http://[::1]:8081/');
    expect(demoPageUrl({ nodeEnv: 'development', host: 'fe80::1' }, 8081)).toBe('http://[fe80::1]:8081/');
    expect(demoPageUrl({ nodeEnv: 'development', host: 'localhost' }, 9000)).toBe('http://localhost:9000/');
    expect(demoPageUrl({ nodeEnv: 'production', host: '127.0.0.1' }, 8080)).toBeNull();
  });
});
