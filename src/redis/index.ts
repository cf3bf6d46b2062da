// connect-jwt/redis: a revocation list and a DPoP replay store shared by
// replicas through Redis, for createJwtAuth's `revocations` and
// `dpop.replayStore` options. Works with a client of `redis` or
// `ioredis` that you create; the rest of connect-jwt never imports this.
export {
  type RedisRevocations,
  type RedisRevocationsOptions,
  redisRevocations,
} from "./redis-revocations.js";
export { type RedisReplayStoreOptions, redisReplayStore } from "./redis-replay-store.js";
export type { RedisClient } from "./redis-link.js";
export type { DpopReplayStore } from "../core/replay-store.js";
export type { Revocations } from "../core/revocations.js";
