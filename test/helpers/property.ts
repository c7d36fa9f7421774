/**
 * Shared parts of the property tests over store faults (fast-check): the fault steps, playing
 * them on a FaultyStore, and a check that prints its seed and the command that replays a failure.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import type { Socket as ClientSocket } from 'socket.io-client';
import { connected, delay } from './servers.js';
import type { FaultyStore, StoreOp } from './stores.js';

export type FaultStep =
  | { kind: 'fault'; op: StoreOp | 'any'; fault: 'hang' | 'error' | 'throw' }
  | { kind: 'clear' }
  | { kind: 'pause'; ms: number };

/** Store get, set or every call hanging, erroring or throwing; faults cleared; pauses up to `pauseMs`. */
export function faultSteps(weights: { fault: number; clear: number; pause: number }, pauseMs: number): Array<fc.WeightedArbitrary<FaultStep>> {
  return [
    {
      weight: weights.fault,
      arbitrary: fc.record({
        kind: fc.constant('fault' as const),
        op: fc.constantFrom<StoreOp | 'any'>('get', 'set', 'any'),
        fault: fc.constantFrom('hang' as const, 'error' as const, 'throw' as const),
      }),
    },
    { weight: weights.clear, arbitrary: fc.constant({ kind: 'clear' as const }) },
    { weight: weights.pause, arbitrary: fc.record({ kind: fc.constant('pause' as const), ms: fc.integer({ min: 0, max: pauseMs }) }) },
  ];
}

/** Play a fault step on `store`. */
export async function playFault(store: FaultyStore, step: FaultStep): Promise<void> {
  if (step.kind === 'pause') await delay(step.ms);
  else if (step.kind === 'clear') store.fault = undefined;
  else store.fault = { op: step.op === 'any' ? undefined : step.op, kind: step.fault };
}

/**
 * Check that `run` finds no problem for arrays of `step` (FC_RUNS runs, `runs` by default); a failure
 * names the seed and path to replay with FC_SEED and FC_PATH.
 */
export async function checkSteps<S>(t: TestContext, step: fc.Arbitrary<S>, maxLength: number, runs: number, run: (steps: S[]) => Promise<string[]>): Promise<void> {
  const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
  const numRuns = Number(process.env.FC_RUNS ?? runs);
  t.diagnostic(`seed ${seed}, ${numRuns} runs`);
  const started = Date.now();
  const details = await fc.check(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength }), async (steps) => {
      const problems = await run(steps);
      if (problems.length > 0) throw new Error(`${problems.join('\n')}\nsteps: ${JSON.stringify(steps)}`);
    }),
    { numRuns, seed, path: process.env.FC_PATH },
  );
  t.diagnostic(`${numRuns} runs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (details.failed) {
    assert.fail(`seed ${details.seed}, path ${details.counterexamplePath}: replay with FC_SEED=${details.seed} FC_PATH='${details.counterexamplePath}'\n${String(details.errorInstance)}`);
  }
}

/**
 * Connect `client`, trying again (up to 3 times) when the handshake's store read missed the short
 * storeTimeout these tests use: on a loaded machine that is the machine, not the property.
 */
export async function connectedDespiteLoad(client: ClientSocket): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connected(client);
    } catch (err) {
      if ((err as { data?: { code?: string } }).data?.code !== 'SESSION_UNAVAILABLE' || attempt === 3) throw err;
      client.connect();
    }
  }
}
