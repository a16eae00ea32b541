"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.SqlEventStore = void 0;
/**
 * The EventStore port implemented once on a SqlClient. The embedded (PGlite) and PostgreSQL adapters
 * only construct the client and, for Postgres, a cross-process wake-up source (LISTEN/NOTIFY).
 */
const event_store_1 = require("./event-store");
const errors_1 = require("./errors");
const polling_subscription_1 = require("./polling-subscription");
const sql_client_1 = require("./sql-client");
const sql_key_value_store_1 = require("./sql-key-value-store");
const EVENT_COLUMNS = 'position, stream_id, revision, event_id, type, data, metadata, recorded_at';
const MAX_BIGINT = '9223372036854775807';
class SqlEventStore {
    sql;
    options;
    kv;
    wakeups = new polling_subscription_1.WakeHub();
    subscriptions = new Set();
    externalStarted;
    closed = false;
    constructor(
    /** Exposed so read models in the same database can share the one connection / pool. */
    sql, options = {}) {
        this.sql = sql;
        this.options = options;
        this.kv = new sql_key_value_store_1.SqlKeyValueStore(sql);
    }
    async append(streamId, events, options) {
        this.assertOpen();
        if (events.length === 0)
            throw new TypeError(`stream ${streamId}: append needs at least one event`);
        const expected = options.expectedRevision;
        const [kind, revision] = expectation(expected);
        // The port: a snapshot only makes sense when the caller knows the exact state it extends.
        const exact = kind === 'exact' || kind === 'no_stream';
        const snapshot = exact && options.snapshot !== undefined ? JSON.stringify(options.snapshot) ?? null : null;
        const payload = JSON.stringify(events.map((e) => ({ eventId: e.eventId, type: e.type, data: e.data ?? null, metadata: e.metadata ?? {} })));
        let row;
        try {
            [row] = await this.sql.query('select conflict, actual_revision, next_revision, positions from tl_append($1, $2, $3, $4::jsonb, $5::jsonb)', [streamId, kind, revision, payload, snapshot]);
        }
        catch (error) {
            if (isUniqueViolation(error, 'event_id')) {
                throw new errors_1.DuplicateEventIdError(streamId, events.map((e) => e.eventId));
            }
            throw error;
        }
        if (row.conflict) {
            throw new event_store_1.WrongExpectedRevisionError(streamId, expected, (0, sql_client_1.toOptionalNumber)(row.actual_revision));
        }
        const positions = (row.positions ?? []).map(sql_client_1.toNumber);
        // In-process subscriptions hear about it now rather than at the next poll or NOTIFY.
        this.wakeups.wake();
        return {
            nextExpectedRevision: (0, sql_client_1.toNumber)(row.next_revision),
            position: positions[positions.length - 1],
            positions,
        };
    }
    async readStream(streamId, options = {}) {
        this.assertOpen();
        const backwards = options.direction === 'backwards';
        const rows = await this.sql.query(backwards
            ? `select ${EVENT_COLUMNS} from tl_events where stream_id = $1 and revision <= coalesce($2::bigint, ${MAX_BIGINT})
           order by revision desc limit $3`
            : `select ${EVENT_COLUMNS} from tl_events where stream_id = $1 and revision >= coalesce($2::bigint, 0)
           order by revision asc limit $3`, [streamId, options.fromRevision ?? null, limit(options.maxCount)]);
        return rows.map(toRecorded);
    }
    async loadStream(streamId) {
        this.assertOpen();
        // One statement: the stream row (revision, snapshot) and only the events after the snapshot,
        // read through the (stream_id, revision) index, so a fresh snapshot means O(1) work.
        const rows = await this.sql.query(`select s.revision as stream_revision, s.snapshot, s.snapshot_revision,
              e.position, e.stream_id, e.revision, e.event_id, e.type, e.data, e.metadata, e.recorded_at
         from tl_streams s
         left join tl_events e on e.stream_id = s.stream_id and e.revision > coalesce(s.snapshot_revision, -1)
        where s.stream_id = $1
        order by e.revision`, [streamId]);
        if (rows.length === 0)
            return { revision: undefined, events: [] };
        const first = rows[0];
        const loaded = {
            revision: (0, sql_client_1.toNumber)(first.stream_revision),
            events: rows.filter((r) => r.position !== null && r.position !== undefined).map((r) => toRecorded(r)),
        };
        if (first.snapshot_revision !== null && first.snapshot_revision !== undefined) {
            loaded.snapshot = { state: first.snapshot, revision: (0, sql_client_1.toNumber)(first.snapshot_revision) };
        }
        return loaded;
    }
    async readAll(options = {}) {
        this.assertOpen();
        const rows = await this.sql.query(`select ${EVENT_COLUMNS} from tl_events where position > $1 order by position limit $2`, [options.after ?? 0, limit(options.maxCount)]);
        return rows.map(toRecorded);
    }
    async headPosition() {
        this.assertOpen();
        const [row] = await this.sql.query('select coalesce(max(position), 0) as head from tl_events');
        return (0, sql_client_1.toNumber)(row.head);
    }
    subscribeToAll(handler, options = {}) {
        this.assertOpen();
        this.startExternalWakeups();
        const subscription = new polling_subscription_1.PollingSubscription(this, this.wakeups, handler, { ...options, pollIntervalMs: this.options.pollIntervalMs }, (s) => this.subscriptions.delete(s));
        this.subscriptions.add(subscription);
        return subscription;
    }
    async ping() {
        this.assertOpen();
        await this.sql.query('select 1');
    }
    async close() {
        if (this.closed)
            return;
        this.closed = true;
        await Promise.all([...this.subscriptions].map((s) => s.close()));
        await this.externalStarted?.catch(() => undefined);
        await this.options.externalWakeups?.close();
        await this.sql.close();
    }
    startExternalWakeups() {
        const external = this.options.externalWakeups;
        if (!external || this.externalStarted)
            return;
        // Failing to LISTEN is not fatal: the fallback poll still delivers, only later.
        this.externalStarted = Promise.resolve(external.start(() => this.wakeups.wake())).catch((error) => process.emitWarning(`event store: cross-process wake-ups unavailable, polling only: ${String(error)}`));
    }
    assertOpen() {
        if (this.closed)
            throw new errors_1.EventStoreClosedError();
    }
}
exports.SqlEventStore = SqlEventStore;
function expectation(expected) {
    if (typeof expected === 'number') {
        if (!Number.isSafeInteger(expected) || expected < 0) {
            throw new RangeError(`expected revision must be an integer >= 0 or no_stream/stream_exists/any, got ${expected}`);
        }
        return ['exact', expected];
    }
    if (expected === 'no_stream' || expected === 'stream_exists' || expected === 'any')
        return [expected, null];
    throw new RangeError(`unknown expected revision ${String(expected)}`);
}
function limit(maxCount) {
    return maxCount === undefined ? null : Math.max(0, Math.floor(maxCount));
}
function toRecorded(row) {
    return {
        eventId: row.event_id,
        type: row.type,
        data: row.data,
        metadata: row.metadata,
        streamId: row.stream_id,
        revision: (0, sql_client_1.toNumber)(row.revision),
        position: (0, sql_client_1.toNumber)(row.position),
        recordedAt: row.recorded_at instanceof Date ? row.recorded_at : new Date(row.recorded_at),
    };
}
/** pg and PGlite both surface SQLSTATE as `code` and the violated constraint as `constraint`. */
function isUniqueViolation(error, column) {
    const e = error;
    if (!e || e.code !== '23505')
        return false;
    return [e.constraint, e.detail, e.message].some((text) => typeof text === 'string' && text.includes(column));
}
