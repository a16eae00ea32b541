import { Writable } from 'node:stream';
import { ProgressBar } from './progress';

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _e: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('ProgressBar', () => {
  afterEach(() => jest.useRealTimers());

  it('redraws one line in place on a terminal with percentage, rate and ETA, at most 10 times a second', () => {
    jest.useFakeTimers({ now: 0 });
    const tty = new Capture(true);
    const bar = new ProgressBar(tty, ProgressBar.wanted(tty, false), 'replay', 1000);
    jest.setSystemTime(1000);
    bar.update(250);
    bar.update(260); // too soon: not drawn
    expect(tty.text).toBe('\r\x1b[2Kreplay [######..................]  25.0% 250/1,000 events  250 events/s  ETA 0:03');
    jest.setSystemTime(4000);
    bar.finish();
    expect(tty.text.endsWith('\r\x1b[2Kreplay [########################] 100.0% 260/1,000 events  65 events/s  in 0:04\n')).toBe(true);
  });

  it('is silent when stderr is not a terminal, unless forced; then plain lines every 2 s', () => {
    jest.useFakeTimers({ now: 0 });
    const pipe = new Capture(false);
    const silent = new ProgressBar(pipe, ProgressBar.wanted(pipe, false), 'verify', 10);
    silent.update(5);
    silent.finish();
    expect(pipe.text).toBe('');
    const forced = new ProgressBar(pipe, ProgressBar.wanted(pipe, true), 'verify', 0);
    jest.setSystemTime(2500);
    forced.update(5000, 0.5);
    jest.setSystemTime(3000);
    forced.update(6000, 0.6);
    expect(pipe.text).toBe('verify [############............]  50.0% 5,000 events  2,000 events/s  ETA 0:03\n');
  });
});
