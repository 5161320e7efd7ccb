import { mount } from '@vue/test-utils';
import { describe, expect, it } from 'vitest';

import { messagesFor } from '../../i18n.js';
import VoteChart from '../VoteChart.vue';

describe('VoteChart', () => {
  const bars = [
    { label: 'Alux Nahual', value: 1200 },
    { label: 'Bohemia Suburbana', value: 300 },
  ];

  it('shows each bar with its label and count, as text', () => {
    const wrapper = mount(VoteChart, { props: { title: 'Votos por banda', bars } });

    expect(wrapper.get('figure').attributes('aria-label')).toBe('Votos por banda');
    expect(wrapper.get('figcaption').text()).toBe('Votos por banda');
    const rows = wrapper.findAll('li');
    expect(rows.map((r) => r.get('.vote-chart__label').text())).toEqual(['Alux Nahual', 'Bohemia Suburbana']);
    expect(rows.map((r) => r.get('.vote-chart__value').text())).toEqual(['1,200 votos', '300 votos']);
    expect(rows.map((r) => r.attributes('data-value'))).toEqual(['1200', '300']);
  });

  it('words the counts in English when told', () => {
    const wrapper = mount(VoteChart, { props: { title: 't', bars: [...bars, { label: 'x', value: 1 }], messages: messagesFor('en') } });
    expect(wrapper.findAll('.vote-chart__value').map((v) => v.text())).toEqual(['1,200 votes', '300 votes', '1 vote']);
    expect(mount(VoteChart, { props: { title: 't', bars: [], messages: messagesFor('en') } }).text()).toContain('No votes counted yet.');
  });

  it('scales the bars to the largest count; the SVG is hidden from screen readers', () => {
    const wrapper = mount(VoteChart, { props: { title: 't', bars } });

    const rects = wrapper.findAll('rect');
    expect(rects.map((r) => Number(r.attributes('width')))).toEqual([100, 25]);
    for (const svg of wrapper.findAll('svg')) expect(svg.attributes('aria-hidden')).toBe('true');
  });

  it('says so when nothing is counted yet, and draws zero-width bars for zero', () => {
    expect(mount(VoteChart, { props: { title: 't', bars: [] } }).text()).toContain('Aún no hay votos contados.');
    const zero = mount(VoteChart, { props: { title: 't', bars: [{ label: 'x', value: 0 }] } });
    expect(zero.get('rect').attributes('width')).toBe('0');
  });
});
