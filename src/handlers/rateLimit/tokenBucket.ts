/**
 * A token bucket: `burst` tokens at most, refilled at `rate` per second, one taken per request.
 * Hand-rolled: it is a few lines of arithmetic, and the npm limiters either wait (we must
 * answer 429 at once) or bring timers per bucket.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;
  constructor(
    readonly rate: number,
    readonly burst: number,
    now = performance.now(),
  ) {
    this.#tokens = burst;
    this.#last = now;
  }

  /** Takes one token if there is one. */
  take(now = performance.now()): boolean {
    if (this.rate <= 0) return false;
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.rate);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
