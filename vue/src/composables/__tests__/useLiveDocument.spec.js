import { flushPromises, mount } from '@vue/test-utils';
import { describe, expect, it, vi } from 'vitest';
import { defineComponent, h } from 'vue';

import { useLiveDocument } from '../useLiveDocument.js';

/** Mounts a component that follows url with fetch; returns the state ref and what handlers got. */
function follow(fetch, intervalMs = 0) {
  const got = [];
  let state;
  const wrapper = mount(
    defineComponent({
      setup() {
        ({ state } = useLiveDocument('/api/live', { logs: (d) => got.push(['logs', d]), results: (d) => got.push(['results', d]) }, { fetch, intervalMs }));
        return () => h('div');
      },
    }),
  );
  return { wrapper, got, state: () => state.value };
}

/** A fetch answering with answers in turn (a Response-like object, or an Error to throw), then waiting for ever. */
function scripted(answers) {
  const urls = [];
  const fetch = async (url) => {
    urls.push(url);
    const a = answers.shift();
    if (a === undefined) return new Promise(() => {});
    if (a instanceof Error) throw a;
    return a;
  };
  return { fetch, urls };
}

const ok = (doc) => ({ ok: true, status: 200, json: async () => doc });

describe('useLiveDocument', () => {
  it('hands each part of each document to its handler, one poll after the other', async () => {
    const { fetch, urls } = scripted([ok({ logs: [1], results: { total: 1 } }), ok({ logs: [2], status: {} })]);
    const { got, state } = follow(fetch);
    expect(state()).toBe('connecting');
    await vi.waitFor(() => expect(urls).toEqual(['/api/live', '/api/live', '/api/live']));
    expect(got).toEqual([['logs', [1]], ['results', { total: 1 }], ['logs', [2]]]);
    expect(state()).toBe('live');
  });

  it('says reconnecting after a failed poll, and connecting while none has answered', async () => {
    const { fetch } = scripted([ok({ logs: [] }), { ok: false, status: 502, json: async () => ({}) }]);
    const { state } = follow(fetch);
    await vi.waitFor(() => expect(state()).toBe('reconnecting'));

    const second = scripted([new Error('offline')]);
    const s2 = follow(second.fetch);
    await flushPromises();
    expect(s2.state()).toBe('connecting'); // never answered: still connecting
  });

  it('stops polling when the component unmounts', async () => {
    const { fetch, urls } = scripted([ok({}), ok({}), ok({}), ok({})]);
    const { wrapper } = follow(fetch, 20);
    await flushPromises();
    wrapper.unmount();
    const n = urls.length;
    await new Promise((r) => setTimeout(r, 80));
    expect(urls.length).toBe(n);
  });
});
