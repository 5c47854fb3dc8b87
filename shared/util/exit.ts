/**
 * Exiting without losing output. `process.exit()` ends the process at once, and whatever a stream
 * to a pipe still holds in Node's queue (everything past the 64 KiB the kernel took) is lost; a
 * reader such as `jq` then sees a cut document. Here an empty write goes in behind everything
 * queued, and its callback runs only once all of it reached the kernel (or the reader went away:
 * the callback then gets the error, and there is nothing left to save).
 */

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) resolve();
    else stream.write('', () => resolve());
  });
}

/** Exit with `code` after stdout and stderr have handed all their bytes to the kernel. */
export function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  void Promise.all([flushed(process.stdout), flushed(process.stderr)]).then(() => process.exit(code));
}
