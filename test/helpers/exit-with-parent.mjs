// Preloaded into the node children the test helpers start (`node --import <this file>`, spawned
// with an IPC channel: `spawnNode` in reference-server.ts). The channel closes when the test
// process is gone, however it ended (SIGKILL and crashes included, where no handler of its runs):
// the child exits then instead of living on as an orphan. `unref`: the channel alone does not keep
// the child alive. Without a channel (run by hand) this does nothing.
process.once('disconnect', () => process.exit(0));
process.channel?.unref();
