// connect-jwt/redis: a revocation list shared by replicas through Redis, for
// createJwtAuth's `revocations` option. Works with a client of `redis` or
// `ioredis` that you create; the rest of connect-jwt never imports this.
export {
  type RedisRevocations,
  type RedisRevocationsOptions,
  redisRevocations,
} from "./redis-revocations.js";
export type { RedisClient } from "./redis-link.js";
export type { Revocations } from "../core/revocations.js";
