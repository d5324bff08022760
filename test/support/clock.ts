/** A clock tests move by hand, instead of sleeping. */
import type { Clock } from '../../src/factors/types.js';

export class TestClock implements Clock {
  private offsetMs = 0;

  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }

  advance(seconds: number): void {
    this.offsetMs += seconds * 1000;
  }
}
