import { mount } from '@vue/test-utils';
import { describe, expect, it } from 'vitest';

import { messagesFor } from '../../i18n.js';
import LogTerminal from '../LogTerminal.vue';

describe('LogTerminal', () => {
  it('renders every line in order inside a labelled log region', () => {
    const wrapper = mount(LogTerminal, {
      props: {
        title: 'Last 20 votes',
        lines: [
          { id: 'a', text: 'first line' },
          { id: 'b', text: 'second line' },
        ],
      },
    });

    const region = wrapper.get('[role="log"]');
    expect(region.attributes('aria-label')).toBe('Last 20 votes');
    expect(wrapper.findAll('li').map((li) => li.text())).toEqual(['first line', 'second line']);
    expect(wrapper.find('.log-terminal__empty').exists()).toBe(false);
  });

  it('says so when there are no lines, in Spanish unless told', async () => {
    const wrapper = mount(LogTerminal, { props: { title: 'Últimos 20 votos' } });

    expect(wrapper.get('section').attributes('aria-label')).toBe('Últimos 20 votos');
    expect(wrapper.findAll('li')).toHaveLength(0);
    expect(wrapper.text()).toContain('Aún no hay registros de votos.');

    await wrapper.setProps({ messages: messagesFor('en') });
    expect(wrapper.text()).toContain('No log lines yet.');
  });

  it('shows where the feed stands, as a status, in the page language', async () => {
    const wrapper = mount(LogTerminal, { props: { title: 't', state: 'live' } });
    const status = wrapper.get('[role="status"]');
    expect(status.text()).toBe('en vivo');

    await wrapper.setProps({ state: 'reconnecting' });
    expect(status.text()).toBe('reconectando…');
    expect(status.classes()).toContain('log-terminal__state--reconnecting');

    await wrapper.setProps({ messages: messagesFor('en') });
    expect(status.text()).toBe('reconnecting…');
  });
});
