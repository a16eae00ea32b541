"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.openEventStore = openEventStore;
const embedded_event_store_1 = require("./embedded-event-store");
const postgres_event_store_1 = require("./postgres-event-store");
/** Opens (and migrates) the configured store. The EventStoreDB adapter joins this union when it lands. */
async function openEventStore(config) {
    switch (config.store) {
        case 'embedded':
            return embedded_event_store_1.EmbeddedEventStore.open(config);
        case 'postgres':
            return postgres_event_store_1.PostgresEventStore.open(config);
        default:
            throw new Error(`unknown event store ${String(config.store)}`);
    }
}
