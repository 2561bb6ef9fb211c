import type { Reporter, TestModule } from 'vitest/node';

/** CI reads a plain closing line `N passed, N failed` (it does not parse vitest's own summary). */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>) {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of modules) {
      let any = false;
      for (const test of mod.children.allTests()) {
        any = true;
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      // A file that failed to load has no tests, and one whose beforeAll failed has only skipped ones: count the
      // file as a failure, so that neither can pass silently as "0 failed".
      if (mod.state() === 'failed' && !(any && [...mod.children.allTests()].some((t) => t.result().state === 'failed'))) failed++;
    }
    failed += unhandledErrors.length;
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  }
}
