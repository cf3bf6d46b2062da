// setTimeout holds at most a signed 32-bit count of milliseconds; longer
// delays fire at once, so a far `exp` is waited for in steps.
const maxDelayMs = 2 ** 31 - 1;

/**
 * endAtExpiry passes a response stream through until `deadlineMs` (a time in
 * ms since the epoch: the token's `exp` plus the clock tolerance), then ends
 * it with the error `expired()` makes. The timer lives exactly as long as the
 * stream: it is cleared when the stream ends, fails, or is abandoned.
 */
export async function* endAtExpiry<T>(
  stream: AsyncIterable<T>,
  deadlineMs: number,
  expired: () => Error,
): AsyncGenerator<T, void, undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expiry = new Promise<never>((_, reject) => {
    const arm = () => {
      const left = deadlineMs - Date.now();
      if (left <= 0) {
        reject(expired());
      } else {
        timer = setTimeout(arm, Math.min(left, maxDelayMs));
      }
    };
    arm();
  });
  // The race below may leave this promise rejected with nobody listening.
  expiry.catch(() => {});
  const it = stream[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const next = await Promise.race([it.next(), expiry]);
      if (next.done === true) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    clearTimeout(timer);
    if (!finished) {
      // Tell the handler's stream to stop; it may be waiting, so do not wait for it.
      void Promise.resolve(it.return?.()).catch(() => {});
    }
  }
}
