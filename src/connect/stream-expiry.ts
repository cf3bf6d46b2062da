import type {
  Interceptor,
  StreamRequest,
  StreamResponse,
  UnaryResponse,
} from "@connectrpc/connect";

// setTimeout holds at most a signed 32-bit count of milliseconds; longer
// delays fire at once, so a far `exp` is waited for in steps.
const maxDelayMs = 2 ** 31 - 1;

/** StreamExpiry is the deadline of one streaming call, made by {@link startExpiry}. */
export interface StreamExpiry {
  /** Aborts at the deadline, with the error `expired()` made; never for another reason. */
  readonly signal: AbortSignal;
  /** Clears the timer: the call ended before its deadline. Safe to call more than once. */
  stop(): void;
}

/**
 * startExpiry arms one timer for a call that must end at `deadlineMs` (a time
 * in ms since the epoch: the token's `exp` plus the clock tolerance). At the
 * deadline its signal aborts with `expired()`, called once. The timer is
 * unref'd: the call's connection keeps the process alive, not its deadline.
 */
export function startExpiry(deadlineMs: number, expired: () => Error): StreamExpiry {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    const left = deadlineMs - Date.now();
    if (left <= 0) {
      controller.abort(expired());
      return;
    }
    timer = setTimeout(arm, Math.min(left, maxDelayMs));
    // Runtimes whose timers are numbers have no unref.
    timer.unref?.();
  };
  arm();
  return { signal: controller.signal, stop: () => clearTimeout(timer) };
}

/**
 * endAtAbort passes a stream through until `signal` aborts, then throws the
 * signal's reason, also while it waits for the next message, and lets go of
 * the source (its `return()` is called, not awaited: it may be waiting).
 * `onEnd` is called once the stream ends, however it ends.
 */
export async function* endAtAbort<T>(
  stream: AsyncIterable<T>,
  signal: AbortSignal,
  onEnd?: () => void,
): AsyncGenerator<T, void, undefined> {
  const it = stream[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const next = await nextBeforeAbort(it, signal);
      if (next.done === true) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    onEnd?.();
    if (!finished) {
      void Promise.resolve(it.return?.()).catch(() => {});
    }
  }
}

/**
 * nextBeforeAbort is `it.next()`, or the signal's reason if it aborts first.
 * It listens to the signal only while it waits. Racing every message against
 * one promise that lives as long as the stream would add a reaction to that
 * promise per message, held until the stream ends: 43 MiB over 100,000
 * messages of one stream in test/e2e/stream-expiry-memory.test.ts.
 */
async function nextBeforeAbort<T>(
  it: AsyncIterator<T>,
  signal: AbortSignal,
): Promise<IteratorResult<T>> {
  signal.throwIfAborted();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
  });
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([it.next(), aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * endAtExpiry runs a streaming call through `next` so that it ends at
 * `deadlineMs` with the error `expired()` makes: the handler's request
 * iteration ends with it and its signal aborts, so no message sent after
 * expiry reaches it; a response stream still being sent ends with it. A
 * handler that returned before the deadline keeps its answer.
 */
export async function endAtExpiry(
  next: Parameters<Interceptor>[0],
  req: StreamRequest,
  deadlineMs: number,
  expired: () => Error,
): Promise<UnaryResponse | StreamResponse> {
  const expiry = startExpiry(deadlineMs, expired);
  // Connect aborts the call's signal when the call ends, however it ends: the timer goes with it.
  req.signal.addEventListener("abort", expiry.stop, { once: true });
  try {
    // The handler's context takes its signal and its messages from the request
    // given to `next`.
    const res = await next({
      ...req,
      signal: AbortSignal.any([req.signal, expiry.signal]),
      message: endAtAbort(req.message, expiry.signal),
    });
    if (req.method.methodKind === "client_streaming" || !res.stream) {
      // The handler has returned. Before the deadline, its answer stands even
      // if the token expires while it is sent; after it, the call is refused.
      expiry.stop();
      expiry.signal.throwIfAborted();
      return res;
    }
    return { ...res, message: endAtAbort(res.message, expiry.signal, expiry.stop) };
  } catch (err) {
    expiry.stop();
    throw err;
  }
}
