// Batching of live events into the page's state.

/**
 * batcher collects items and hands them to flush at most every ms
 * milliseconds, until signal aborts.
 */
export function batcher(flush, signal, ms = 100) {
  let buf = [];
  let timer = null;
  signal.addEventListener('abort', () => clearTimeout(timer));
  return {
    add(item) {
      buf.push(item);
      if (!timer) {
        timer = setTimeout(() => {
          timer = null;
          const items = buf;
          buf = [];
          if (!signal.aborted) flush(items);
        }, ms);
      }
    },
  };
}
