/**
 * RedisClient is a connected client from `redis` (node-redis v4 and later)
 * or from `ioredis`; which one is told by its API. connect-jwt imports
 * neither package: it calls the client you created.
 */
export type RedisClient = object;

/** What redisRevocations needs of Redis, the same for both clients. */
export interface RedisLink {
  /** Runs one command, e.g. `["ZADD", key, "GT", "1700000000", "a-jti"]`. */
  command(args: readonly string[]): Promise<unknown>;
  /**
   * Subscribes to `channel` on `subscriber`, or on a connection of its own
   * duplicated from the client; resolves to the function that undoes it.
   */
  subscribe(
    channel: string,
    onMessage: (message: string) => void,
    subscriber: RedisClient | undefined,
  ): Promise<() => Promise<void>>;
}

interface NodeRedis {
  sendCommand(args: readonly string[]): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  unsubscribe(channel: string, listener: (message: string) => void): Promise<void>;
  duplicate(): NodeRedis;
  connect(): Promise<unknown>;
  on(event: "error", listener: (err: unknown) => void): unknown;
  destroy?(): void;
  disconnect(): Promise<void>;
}

interface IORedis {
  call(command: string, ...args: string[]): Promise<unknown>;
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: string, listener: (...args: never[]) => void): unknown;
  off(event: string, listener: (...args: never[]) => void): unknown;
  duplicate(): IORedis;
  disconnect(): void;
}

function isIORedis(client: object): client is IORedis {
  const c = client as Partial<Record<keyof IORedis, unknown>>;
  return typeof c.call === "function" && typeof c.duplicate === "function";
}

function isNodeRedis(client: object): client is NodeRedis {
  const c = client as Partial<Record<keyof NodeRedis, unknown>>;
  return (
    typeof c.sendCommand === "function" &&
    typeof c.subscribe === "function" &&
    typeof c.duplicate === "function"
  );
}

/** Adapts a node-redis or ioredis client; throws a TypeError for anything else. */
export function redisLink(client: unknown, name: string): RedisLink {
  if (typeof client === "object" && client !== null && isIORedis(client)) {
    return ioRedisLink(client);
  }
  if (typeof client === "object" && client !== null && isNodeRedis(client)) {
    return nodeRedisLink(client);
  }
  throw new TypeError(
    `${name} must be a connected client of \`redis\` (createClient) or \`ioredis\` (new Redis())`,
  );
}

function nodeRedisLink(client: NodeRedis): RedisLink {
  return {
    command: (args) => client.sendCommand(args),
    async subscribe(channel, onMessage, subscriber) {
      if (subscriber !== undefined && !isNodeRedis(subscriber)) {
        throw new TypeError("subscriber must be a client of the same package as client");
      }
      const own = subscriber === undefined ? client.duplicate() : undefined;
      const connection = subscriber ?? own;
      if (own !== undefined) {
        // Its errors are reconnections, seen as staleness; unheard, they would crash the process.
        own.on("error", () => {});
        await own.connect();
      }
      const listener = (message: string) => onMessage(message);
      await (connection as NodeRedis).subscribe(channel, listener);
      return async () => {
        if (own === undefined) {
          await (connection as NodeRedis).unsubscribe(channel, listener);
        } else if (own.destroy !== undefined) {
          own.destroy();
        } else {
          await own.disconnect();
        }
      };
    },
  };
}

function ioRedisLink(client: IORedis): RedisLink {
  return {
    command: ([command = "", ...args]) => client.call(command, ...args),
    async subscribe(channel, onMessage, subscriber) {
      if (subscriber !== undefined && !isIORedis(subscriber)) {
        throw new TypeError("subscriber must be a client of the same package as client");
      }
      const own = subscriber === undefined ? client.duplicate() : undefined;
      const connection = subscriber ?? (own as IORedis);
      own?.on("error", () => {});
      const listener = (from: string, message: string) => {
        if (from === channel) {
          onMessage(message);
        }
      };
      connection.on("message", listener as (...args: never[]) => void);
      await connection.subscribe(channel);
      return async () => {
        connection.off("message", listener as (...args: never[]) => void);
        if (own === undefined) {
          await connection.unsubscribe(channel);
        } else {
          own.disconnect();
        }
      };
    },
  };
}
