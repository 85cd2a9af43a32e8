/**
 * The progress of stages that run at once, printed as a build in file order prints it: the first
 * unfinished stage's events go out as they come, the later stages' are held until every stage
 * before them has finished, then given in one piece. So the output is the same whatever order the
 * stages ran in, and a step's lines are never interleaved with another stage's.
 */
import type { BuildProgress } from './stage-state.js';

export class StagePrinter {
  readonly #held = new Map<number, BuildProgress[]>();
  readonly #finished = new Set<number>();
  #at = 0;

  /** `order`: the stages' indexes in file order. */
  constructor(
    private readonly out: (e: BuildProgress) => void,
    private readonly order: readonly number[],
  ) {
    for (const i of order) this.#held.set(i, []);
  }

  /** The progress handler of stage `index`. */
  sink(index: number): (e: BuildProgress) => void {
    return (e) => {
      if (this.order[this.#at] === index) this.out(e);
      else this.#held.get(index)?.push(e);
    };
  }

  /** Stage `index` has finished: the stages after it whose turn it now is are given. */
  finish(index: number): void {
    this.#finished.add(index);
    while (this.#at < this.order.length && this.#finished.has(this.order[this.#at]!)) {
      this.#at++;
      this.#drain();
    }
  }

  /** After a failure: what every stage still holds, in file order. */
  flushAll(): void {
    while (this.#at < this.order.length) {
      this.#drain();
      this.#at++;
    }
  }

  #drain(): void {
    const i = this.order[this.#at];
    if (i === undefined) return;
    const held = this.#held.get(i)!;
    this.#held.set(i, []);
    for (const e of held) this.out(e);
  }
}
