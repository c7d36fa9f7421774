/**
 * What must never happen in a test's process: an unhandled rejection or an uncaught exception
 * (Node ends the process on either by default). Collected while the test runs.
 */
export function watchProcess(t: { after(fn: () => unknown): void }): unknown[] {
  const crashes: unknown[] = [];
  const onError = (err: unknown) => crashes.push(err);
  process.on('unhandledRejection', onError);
  process.on('uncaughtException', onError);
  t.after(() => {
    process.off('unhandledRejection', onError);
    process.off('uncaughtException', onError);
  });
  return crashes;
}
