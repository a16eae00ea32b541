"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.PollingSubscription = exports.DEFAULT_BATCH_SIZE = exports.DEFAULT_POLL_INTERVAL_MS = exports.WakeHub = void 0;
/** Fan-out of "something may have been appended" signals to the running subscriptions. */
class WakeHub {
    listeners = new Set();
    add(listener) {
        this.listeners.add(listener);
        return () => this.listeners.delete(listener);
    }
    wake() {
        for (const listener of [...this.listeners])
            listener();
    }
    get size() {
        return this.listeners.size;
    }
}
exports.WakeHub = WakeHub;
exports.DEFAULT_POLL_INTERVAL_MS = 250;
exports.DEFAULT_BATCH_SIZE = 500;
class PollingSubscription {
    source;
    handler;
    options;
    onClosed;
    caughtUp;
    current;
    closed = false;
    wakePending = false;
    wakeWaiter;
    caughtUpSettled = false;
    resolveCaughtUp;
    rejectCaughtUp;
    unregister;
    timer;
    loop;
    batchSize;
    readWarned = false;
    constructor(source, wakeups, handler, options = {}, onClosed) {
        this.source = source;
        this.handler = handler;
        this.options = options;
        this.onClosed = onClosed;
        this.current = options.after ?? 0;
        this.batchSize = Math.max(1, options.batchSize ?? exports.DEFAULT_BATCH_SIZE);
        this.caughtUp = new Promise((resolve, reject) => {
            this.resolveCaughtUp = resolve;
            this.rejectCaughtUp = reject;
        });
        // Nobody is obliged to await caughtUp; a rejection there must not become an unhandled rejection.
        this.caughtUp.catch(() => undefined);
        this.unregister = wakeups.add(() => this.wake());
        this.timer = setInterval(() => this.wake(), options.pollIntervalMs ?? exports.DEFAULT_POLL_INTERVAL_MS);
        // A subscription alone must not keep a process (or a jest worker) alive.
        this.timer.unref();
        this.loop = this.run();
    }
    get position() {
        return this.current;
    }
    async close() {
        if (!this.closed) {
            this.closed = true;
            this.stopTimers();
            this.settleCaughtUp(new Error('subscription closed before it caught up'));
            this.wake();
        }
        await this.loop;
    }
    wake() {
        this.wakePending = true;
        const waiter = this.wakeWaiter;
        this.wakeWaiter = undefined;
        waiter?.();
    }
    waitForWake() {
        if (this.wakePending || this.closed)
            return Promise.resolve();
        return new Promise((resolve) => (this.wakeWaiter = resolve));
    }
    async run() {
        try {
            const target = await this.retrying(() => this.source.headPosition());
            if (target === undefined)
                return; // closed while the store was unreachable
            if (this.current >= target)
                this.settleCaughtUp();
            while (!this.closed) {
                // Cleared before reading: a wake-up that lands during the read triggers one more read.
                this.wakePending = false;
                const page = await this.retrying(() => this.source.readAll({ after: this.current, maxCount: this.batchSize }));
                if (page === undefined)
                    return;
                for (const event of page) {
                    if (this.closed)
                        return;
                    await this.handler(event);
                    this.current = event.position;
                    if (this.current >= target)
                        this.settleCaughtUp();
                }
                // A short page held everything committed when it was read, which was after `target`.
                if (page.length < this.batchSize) {
                    this.settleCaughtUp();
                    await this.waitForWake();
                }
            }
        }
        catch (error) {
            // Only handler errors get here: the position stays at the last event the handler finished.
            this.closed = true;
            this.stopTimers();
            this.settleCaughtUp(error ?? new Error('subscription handler failed'));
            try {
                if (this.options.onError)
                    this.options.onError(error);
                else
                    process.emitWarning(`event store subscription stopped: ${messageOf(error)}`);
            }
            catch {
                // An onError that throws must not turn into an unhandled rejection of close().
            }
        }
        finally {
            this.stopTimers();
            this.onClosed?.(this);
        }
    }
    /**
     * Store reads are retried on the next wake-up or poll instead of killing the subscription: a
     * database restart must not silently stop a projection. Resolves undefined once closed.
     */
    async retrying(read) {
        for (;;) {
            if (this.closed)
                return undefined;
            try {
                const result = await read();
                this.readWarned = false;
                return result;
            }
            catch (error) {
                if (!this.readWarned) {
                    this.readWarned = true;
                    process.emitWarning(`event store subscription: read failed, retrying: ${messageOf(error)}`);
                }
                this.wakePending = false;
                await this.waitForWake();
            }
        }
    }
    settleCaughtUp(error) {
        if (this.caughtUpSettled)
            return;
        this.caughtUpSettled = true;
        if (error === undefined)
            this.resolveCaughtUp();
        else
            this.rejectCaughtUp(error);
    }
    stopTimers() {
        clearInterval(this.timer);
        this.unregister();
    }
}
exports.PollingSubscription = PollingSubscription;
function messageOf(error) {
    return error instanceof Error ? error.message : String(error);
}
