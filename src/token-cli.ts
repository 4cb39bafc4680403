// `npm run token -- <user_id> [ttl_seconds]`: prints a user token signed with the
// configured GATEWAY_JWT_SECRET (the development secret when unset, as `npm start` uses).

import { ConfigError, loadConfig } from './config.js';
import { canonicalSnowflake } from './gateway/codec.js';
import { UserTokens } from './gateway/user-tokens.js';

const [userArg, ttlArg] = process.argv.slice(2);
const userId = canonicalSnowflake(userArg);
const ttlSeconds = ttlArg === undefined ? 24 * 3600 : Number(ttlArg);
if (userId === null || !Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
  process.stderr.write('usage: npm run token -- <user_id (decimal snowflake)> [ttl_seconds, default 86400]\n');
  process.exit(2);
}
try {
  const config = loadConfig();
  process.stdout.write(`${await new UserTokens(config.jwtSecret).sign(userId, ttlSeconds)}\n`);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(2);
}
