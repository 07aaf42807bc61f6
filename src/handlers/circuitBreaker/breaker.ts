/**
 * One circuit breaker with hystrix semantics (hystrix-go circuit.go, as go-chassis runs it):
 * closed while the rolling window has fewer than `requestVolumeThreshold` requests or an
 * error share under `errorThresholdPercentage`; then open for `sleepWindow`; then one probe
 * request at a time is let through: a success closes it, a failure opens it again.
 * Hand-rolled: the npm breakers (opossum) wrap a function call and time it themselves; here the
 * breaker must sit in a handler chain and count outcomes the chain decides.
 */
export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerSettings {
  requestVolumeThreshold: number;
  errorThresholdPercentage: number;
  sleepWindow: number;
  rollingWindow: number;
}

const BUCKETS = 10;

export class Breaker {
  /** Requests in flight through this breaker (the bulkhead reads it). */
  active = 0;
  /** What it guards, as the stats page shows it: "svc", "svc/route" or "svc/host:port". */
  label = "";
  #state: BreakerState = "closed";
  #openedAt = 0;
  #probing = false;
  readonly #total = new Float64Array(BUCKETS);
  readonly #failed = new Float64Array(BUCKETS);
  #bucket = 0;
  #bucketStart = 0;

  constructor(
    readonly settings: BreakerSettings,
    readonly onChange: (state: BreakerState) => void = () => {},
  ) {}

  get state(): BreakerState {
    return this.#state;
  }

  /** "closed", "open", or "half-open" once the sleep window is over and a probe may pass. */
  describe(now: number): string {
    if (this.#state === "closed") return "closed";
    return this.isOpen(now) ? "open" : "half-open";
  }

  /** Open and not yet due for a probe, at `now`. */
  isOpen(now: number): boolean {
    return this.#state !== "closed" && (this.#probing || now - this.#openedAt < this.settings.sleepWindow);
  }

  /** May a request pass? "probe" when it is the one half-open test request. */
  acquire(now: number): "closed" | "probe" | false {
    if (this.#state === "closed") return "closed";
    if (this.isOpen(now)) return false;
    this.#probing = true;
    this.#set("half_open");
    return "probe";
  }

  /** Gives back a probe that was acquired but not used (the request was refused elsewhere). */
  release(): void {
    this.#probing = false;
  }

  /** Records an outcome. A probe's outcome decides the state; otherwise it joins the window. */
  record(failed: boolean, probe: boolean, now: number): void {
    if (probe || this.#state !== "closed") {
      if (!probe && this.#state === "open") return; // a straggler from before the trip
      this.#probing = false;
      if (failed) {
        this.#openedAt = now;
        this.#set("open");
      } else {
        this.#reset(now);
        this.#set("closed");
      }
      return;
    }
    this.#roll(now);
    this.#total[this.#bucket]!++;
    if (failed) this.#failed[this.#bucket]!++;
    let total = 0;
    let bad = 0;
    for (let i = 0; i < BUCKETS; i++) {
      total += this.#total[i]!;
      bad += this.#failed[i]!;
    }
    if (failed && total >= this.settings.requestVolumeThreshold && (bad / total) * 100 >= this.settings.errorThresholdPercentage) {
      this.#openedAt = now;
      this.#set("open");
    }
  }

  #roll(now: number): void {
    const width = this.settings.rollingWindow / BUCKETS;
    if (now - this.#bucketStart < width) return;
    const steps = Math.min(BUCKETS, Math.floor((now - this.#bucketStart) / width));
    for (let i = 0; i < steps; i++) {
      this.#bucket = (this.#bucket + 1) % BUCKETS;
      this.#total[this.#bucket] = 0;
      this.#failed[this.#bucket] = 0;
    }
    this.#bucketStart = steps === BUCKETS ? now : this.#bucketStart + steps * width;
  }

  #reset(now: number): void {
    this.#total.fill(0);
    this.#failed.fill(0);
    this.#bucketStart = now;
  }

  #set(state: BreakerState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.onChange(state);
  }
}
