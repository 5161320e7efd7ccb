import { onUnmounted, ref } from 'vue';

/** How long to wait before opening a new stream after the browser gave up on one. */
export const RETRY_MS = 2000;

/**
 * Follows a Server-Sent Events stream: opens an EventSource on url and calls handlers[name] with
 * the parsed JSON of each event of that name. After a drop the browser reconnects by itself (the
 * API asks for 2 s); if it gives up (the proxy answered 502, say), this opens a new one. `state`
 * says where the connection stands, so the page can show it. The stream closes when the calling
 * component unmounts: call this synchronously in setup.
 *
 * @param {string} url
 * @param {Record<string, (data: any) => void>} handlers
 * @param {{ EventSource?: typeof EventSource }} [options] the EventSource class (tests pass their own)
 * @returns {{ state: import('vue').Ref<'connecting' | 'live' | 'reconnecting'> }}
 */
export function useEventStream(url, handlers, { EventSource: Source = globalThis.EventSource } = {}) {
  const state = ref('connecting');
  let source = null;
  let retry = null;
  let closed = false;

  function open() {
    source = new Source(url);
    source.addEventListener('open', () => {
      state.value = 'live';
    });
    source.addEventListener('error', () => {
      state.value = 'reconnecting';
      // CONNECTING (0): the browser retries by itself. CLOSED (2): it gave up; start over.
      if (source.readyState === 2 && !closed) {
        source.close();
        retry = setTimeout(open, RETRY_MS);
      }
    });
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
    }
  }

  open();
  onUnmounted(() => {
    closed = true;
    clearTimeout(retry);
    source.close();
  });
  return { state };
}
