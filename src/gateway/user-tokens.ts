// User tokens: HS256 JWTs whose `sub` is the user id and whose `exp` lies in the future
// (docs/protocol.md "Session"). Verification answers the user id or null; why a token failed is
// not the client's business (every failure closes with 4004).

import { jwtVerify, SignJWT } from 'jose';
import { canonicalSnowflake } from './codec.js';

export class UserTokens {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  /** The canonical user id of a valid token, else null. */
  async verify(token: string): Promise<string | null> {
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'] });
      return canonicalSnowflake(payload.sub);
    } catch {
      return null;
    }
  }

  /** A token for `userId` valid for `ttlSeconds`. */
  sign(userId: string, ttlSeconds: number): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(this.key);
  }
}
