import { onUnmounted, ref } from 'vue';

/** How often the page asks for the live document: as long as the API lets a CDN keep it. */
export const POLL_MS = 1000;

/**
 * Follows the API's live document (GET /api/live: {logs, results, status}, node/src/live.js):
 * fetches it every intervalMs, one request after the other, and calls handlers[name] with each
 * part the document has. A CDN in front of the webapp answers these for every viewer from one
 * copy a second, which an event stream per viewer could not (docs/performance.md). `state` says
 * where the page stands: 'connecting' until the first answer, 'live' while answers come,
 * 'reconnecting' after one failed (the next poll tries again). Polling stops when the calling
 * component unmounts: call this synchronously in setup.
 *
 * @param {string} url
 * @param {Record<string, (data: any) => void>} handlers
 * @param {{ fetch?: typeof fetch, intervalMs?: number }} [options]
 * @returns {{ state: import('vue').Ref<'connecting' | 'live' | 'reconnecting'> }}
 */
export function useLiveDocument(url, handlers, { fetch = (...args) => globalThis.fetch(...args), intervalMs = POLL_MS } = {}) {
  const state = ref('connecting');
  let timer = null;
  let closed = false;

  async function poll() {
    try {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      const doc = await res.json();
      if (closed) return;
      for (const [name, handle] of Object.entries(handlers)) {
        if (doc[name] != null) handle(doc[name]);
      }
      state.value = 'live';
    } catch {
      if (!closed && state.value !== 'connecting') state.value = 'reconnecting';
    }
    if (!closed) timer = setTimeout(poll, intervalMs);
  }

  poll();
  onUnmounted(() => {
    closed = true;
    clearTimeout(timer);
  });
  return { state };
}
