import assert from 'node:assert/strict';
import { ceilingFrom, type VerifySample } from '../../bench/network.js';

const sample = (perSec: number, quiet: boolean): VerifySample => ({
  perSec,
  wallPerSec: perSec,
  waitedMs: quiet ? 300 : 6300,
  otherCores: quiet ? 0 : 1,
  quiet,
});

describe('bench/network: the ceiling a saturation phase is divided by', () => {
  it('is 2 cores x the mean of the quiet samples on either side / 3 validators', () => {
    const around = [sample(12_000, true), sample(12_600, true)];
    assert.equal(ceilingFrom(around, around, 9_000), Math.round((2 * 12_300) / 3));
  });

  it('leaves a sample that was not quiet out of the mean', () => {
    const around = [sample(7_000, false), sample(12_600, true)];
    assert.equal(ceilingFrom(around, around, 9_000), Math.round((2 * 12_600) / 3));
  });

  it('falls back to the highest rate of the run when no sample beside the phase was quiet', () => {
    const around = [sample(8_000, false), sample(9_500, false)];
    const all = [sample(11_000, true), ...around];
    assert.equal(ceilingFrom(around, all, 10_000), Math.round((2 * 11_000) / 3));
    assert.equal(ceilingFrom(around, around, 13_000), Math.round((2 * 13_000) / 3));
  });

  it('never lowers the ceiling below what the quiet samples say because of a disturbed one', () => {
    const quiet = [sample(12_000, true), sample(12_000, true)];
    const disturbed = [sample(12_000, true), sample(6_000, false)];
    assert.ok(ceilingFrom(disturbed, disturbed, 0) >= ceilingFrom(quiet, quiet, 0));
  });
});
