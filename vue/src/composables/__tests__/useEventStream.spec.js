import { mount } from '@vue/test-utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defineComponent, h } from 'vue';

import { FakeEventSource } from '../../__tests__/fakeEventSource.js';
import { RETRY_MS, useEventStream } from '../useEventStream.js';

function mountWith(handlers) {
  let stream;
  const wrapper = mount(
    defineComponent({
      setup() {
        stream = useEventStream('/api/stream', handlers, { EventSource: FakeEventSource });
        return () => h('div');
      },
    }),
  );
  return { wrapper, stream };
}

describe('useEventStream', () => {
  beforeEach(() => {
    FakeEventSource.instances = [];
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it('parses named events and reports the connection state', () => {
    const got = [];
    const { stream } = mountWith({ logs: (d) => got.push(d) });
    const source = FakeEventSource.latest();
    expect(source.url).toBe('/api/stream');
    expect(stream.state.value).toBe('connecting');

    source.emit('open');
    expect(stream.state.value).toBe('live');
    source.emit('logs', [{ id: 'a' }]);
    expect(got).toEqual([[{ id: 'a' }]]);

    source.readyState = 0; // the browser is retrying by itself
    source.emit('error');
    expect(stream.state.value).toBe('reconnecting');
    expect(FakeEventSource.instances).toHaveLength(1);
    source.emit('open');
    expect(stream.state.value).toBe('live');
  });

  it('opens a new stream when the browser gives up on one', () => {
    const got = [];
    const { stream } = mountWith({ results: (d) => got.push(d) });
    const first = FakeEventSource.latest();
    first.readyState = 2;
    first.emit('error');
    expect(stream.state.value).toBe('reconnecting');
    expect(first.closed).toBe(true);

    vi.advanceTimersByTime(RETRY_MS);
    const second = FakeEventSource.latest();
    expect(second).not.toBe(first);
    second.emit('open');
    second.emit('results', { total: 3 });
    expect(stream.state.value).toBe('live');
    expect(got).toEqual([{ total: 3 }]);
  });

  it('closes the stream when the component unmounts', () => {
    const { wrapper } = mountWith({});
    const source = FakeEventSource.latest();
    wrapper.unmount();
    expect(source.closed).toBe(true);
  });
});
