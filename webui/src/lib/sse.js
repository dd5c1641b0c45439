// A parser for Server-Sent Events (the WHATWG "event stream" format).
//
// The dashboard reads the event stream with fetch rather than EventSource:
// EventSource hands named events ("event: failover") only to listeners of
// that exact name, so kinds added to the firmware later would be missed,
// and it cannot tell a lost session (401) from a network error. This
// parser is fed the text as it arrives, in chunks cut anywhere.

/**
 * SSEParser calls onEvent({type, data, id}) for each complete event and
 * onRetry(ms) for a retry field. lastId is the last event id seen, to send
 * as Last-Event-ID when reconnecting.
 */
export class SSEParser {
  constructor(onEvent, onRetry = () => {}) {
    this.onEvent = onEvent;
    this.onRetry = onRetry;
    this.buf = '';
    this.data = [];
    this.type = '';
    this.lastId = '';
    this.first = true;
  }

  /** feed parses the next chunk of text. */
  feed(chunk) {
    this.buf += chunk;
    if (this.first && this.buf.length > 0) {
      // A byte order mark may start the stream.
      if (this.buf.charCodeAt(0) === 0xfeff) this.buf = this.buf.slice(1);
      this.first = false;
    }
    for (;;) {
      const i = this.buf.search(/[\r\n]/);
      if (i < 0) break;
      // A CR at the end of the chunk may be the first half of a CRLF.
      if (this.buf[i] === '\r' && i === this.buf.length - 1) break;
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + (this.buf[i] === '\r' && this.buf[i + 1] === '\n' ? 2 : 1));
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0) {
        this.onEvent({ type: this.type || 'message', data: this.data.join('\n'), id: this.lastId });
      }
      this.data = [];
      this.type = '';
      return;
    }
    if (line[0] === ':') return;
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let value = c < 0 ? '' : line.slice(c + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.type = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.onRetry(Number(value));
        break;
    }
  }
}
