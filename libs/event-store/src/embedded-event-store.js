"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.EmbeddedEventStore = void 0;
const fs = __importStar(require("node:fs"));
const node_module_1 = require("node:module");
const path = __importStar(require("node:path"));
const sql_event_store_1 = require("./sql-event-store");
const sql_schema_1 = require("./sql-schema");
/** Thin SqlClient over one PGlite instance; PGlite queues concurrent queries itself. */
class PgliteSqlClient {
    db;
    onClose;
    constructor(db, onClose) {
        this.db = db;
        this.onClose = onClose;
    }
    async query(text, params) {
        return (await this.db.query(text, params)).rows;
    }
    async exec(script) {
        await this.db.exec(script);
    }
    transaction(fn) {
        return this.db.transaction((tx) => fn({ query: async (text, params) => (await tx.query(text, params)).rows }));
    }
    async close() {
        try {
            await this.db.close();
        }
        finally {
            this.onClose();
        }
    }
}
/**
 * PGlite's CommonJS build loads its WASM and Node built-ins with dynamic import(), which a jest VM
 * context refuses without --experimental-vm-modules. Loading it through Node's own require keeps it
 * outside any such sandbox; under plain Node this is exactly `require('@electric-sql/pglite')`.
 */
function loadPGlite() {
    const nativeRequire = (0, node_module_1.createRequire)(__filename);
    return nativeRequire('@electric-sql/pglite').PGlite;
}
const openDirs = new Set();
class EmbeddedEventStore extends sql_event_store_1.SqlEventStore {
    static async open(options) {
        const dataDir = path.resolve(options.dataDir);
        if (openDirs.has(dataDir)) {
            throw new Error(`embedded event store ${dataDir} is already open in this process; share that instance`);
        }
        fs.mkdirSync(dataDir, { recursive: true });
        const lock = acquireDirLock(dataDir);
        openDirs.add(dataDir);
        const release = () => {
            openDirs.delete(dataDir);
            lock.release();
        };
        let db;
        try {
            db = await loadPGlite().create({ dataDir: path.join(dataDir, 'pgdata') });
            const client = new PgliteSqlClient(db, release);
            await client.exec((0, sql_schema_1.schemaScript)('public'));
            return new EmbeddedEventStore(client, { pollIntervalMs: options.pollIntervalMs });
        }
        catch (error) {
            await db?.close().catch(() => undefined);
            release();
            throw error;
        }
    }
}
exports.EmbeddedEventStore = EmbeddedEventStore;
/**
 * A pid file, so a second process (say the CLI while `serve` runs) fails fast instead of corrupting
 * the cluster. A lock whose pid is dead, or is our own pid (a restarted container reusing pid 1), is
 * stale and taken over.
 */
function acquireDirLock(dataDir) {
    const lockPath = path.join(dataDir, 'token-ledger.lock');
    for (let attempt = 0;; attempt++) {
        try {
            fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
            break;
        }
        catch (error) {
            if (error.code !== 'EEXIST' || attempt > 0)
                throw error;
            const owner = Number.parseInt(fs.readFileSync(lockPath, 'utf8'), 10);
            if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
                throw new Error(`embedded event store ${dataDir} is in use by process ${owner} (remove ${lockPath} if that is not true)`);
            }
            fs.rmSync(lockPath, { force: true });
        }
    }
    return {
        release: () => fs.rmSync(lockPath, { force: true }),
    };
}
function isAlive(pid) {
    try {
        process.kill(pid, 0);
        return true;
    }
    catch (error) {
        return error.code === 'EPERM';
    }
}
