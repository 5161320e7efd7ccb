import { mount } from '@vue/test-utils';
import { describe, expect, it } from 'vitest';

import LogTerminal from '../LogTerminal.vue';

describe('LogTerminal', () => {
  it('renders every log line in order inside a labelled log region', () => {
    const wrapper = mount(LogTerminal, {
      props: { title: 'Pipeline log', lines: ['first line', 'second line'] },
    });

    const region = wrapper.get('[role="log"]');
    expect(region.attributes('aria-label')).toBe('Pipeline log');
    expect(wrapper.findAll('li').map((li) => li.text())).toEqual(['first line', 'second line']);
    expect(wrapper.find('.log-terminal__empty').exists()).toBe(false);
  });

  it('says so when there are no lines', () => {
    const wrapper = mount(LogTerminal);

    expect(wrapper.get('[role="log"]').attributes('aria-label')).toBe('Log');
    expect(wrapper.findAll('li')).toHaveLength(0);
    expect(wrapper.text()).toContain('No log lines yet.');
  });
});
