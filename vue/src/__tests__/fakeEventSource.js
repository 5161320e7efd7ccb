// An EventSource stand-in for unit tests: the test opens, fails and feeds the stream by hand.
export class FakeEventSource {
  static instances = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.closed = false;
    this.listeners = {};
    FakeEventSource.instances.push(this);
  }

  addEventListener(name, fn) {
    (this.listeners[name] ??= []).push(fn);
  }

  close() {
    this.closed = true;
    this.readyState = 2;
  }

  /** Delivers an event: 'open', 'error', or a named one with data (serialised as the API does). */
  emit(name, data) {
    if (name === 'open') this.readyState = 1;
    const event = data === undefined ? { type: name } : { type: name, data: JSON.stringify(data) };
    for (const fn of this.listeners[name] ?? []) fn(event);
  }

  static latest() {
    return FakeEventSource.instances.at(-1);
  }
}
