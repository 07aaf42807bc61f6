/**
 * State handlers keep across reloads (balancers, breakers, token buckets), by key. Each key
 * includes the settings the state was made from, so a changed setting gets fresh state; the
 * sweep after a reload drops what no handler asked for since the previous one.
 */
export class StateStore extends Map<string, unknown> {
  #asked = new Set<string>();

  override get(key: string): unknown {
    this.#asked.add(key);
    return super.get(key);
  }

  /** Drops entries not asked for since the last sweep; call after a new pipeline is in place. */
  sweep(): void {
    for (const key of this.keys()) if (!this.#asked.has(key)) this.delete(key);
    this.#asked.clear();
  }
}
